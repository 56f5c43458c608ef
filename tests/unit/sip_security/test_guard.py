"""Counting failed SIP authentications from Asterisk's security events (the events as Asterisk 22.10 sends them:
tests/integration/test_sip_security.py runs the same against the real one)."""

from __future__ import annotations

import datetime as dt

from callcenter.sip_security.guard import TRUST, FailureTracker, Policy, remote_address

T0 = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)
ATTACKER = "IPV4/UDP/203.0.113.9/5061"


def _event(name: str, remote: str, account: str, **fields: str) -> dict[str, str]:
    return {"Event": name, "Privilege": "security,all", "Severity": "Error", "Service": "PJSIP", "EventVersion": "1",
            "AccountID": account, "SessionID": "1-6469@203.0.113.9", "LocalAddress": "IPV4/UDP/127.0.0.1/5060",
            "RemoteAddress": remote, **fields}


def wrong_password(remote: str = ATTACKER, account: str = "dev-1") -> list[dict[str, str]]:
    """One REGISTER handshake with a wrong password, as Asterisk reports it (its ChallengeSent has no nonce)."""
    return [_event("ChallengeSent", remote, account, Severity="Informational", Challenge=""),
            _event("ChallengeResponseFailed", remote, account, Challenge="1796613541/3a23", Response="2507",
                   ExpectedResponse="")]


def unknown_account(remote: str = ATTACKER, account: str = "nosuchuser") -> list[dict[str, str]]:
    """One REGISTER handshake for an account that does not exist (challenged all the same)."""
    return [_event("InvalidAccountID", remote, account),
            _event("ChallengeSent", remote, "<unknown>", Severity="Informational", Challenge=""),
            _event("InvalidAccountID", remote, account),
            _event("ChallengeResponseFailed", remote, "<unknown>", Challenge="1796613541/fbb7", Response="27d7",
                   ExpectedResponse="")]


def success(remote: str, account: str = "dev-2") -> dict[str, str]:
    return _event("SuccessfulAuth", remote, account, Severity="Informational", UsingPassword="1")


def feed(tracker: FailureTracker, events: list[dict[str, str]], at: dt.datetime = T0) -> list[object]:
    return [offence for event in events if (offence := tracker.observe(event, at)) is not None]


def test_the_nth_wrong_password_in_the_window_is_an_offence_naming_the_address_and_accounts() -> None:
    tracker = FailureTracker(Policy(3, dt.timedelta(minutes=5)))
    assert feed(tracker, wrong_password() + wrong_password(account="dev-2")) == []
    [offence] = feed(tracker, wrong_password(), T0 + dt.timedelta(seconds=2))
    assert (offence.address, offence.failures, offence.first_failure_at) == ("203.0.113.9", 3, T0)
    assert offence.accounts == ("dev-1", "dev-2") and not offence.trusted


def test_each_request_naming_an_unknown_account_is_one_failure() -> None:
    tracker = FailureTracker(Policy(10, dt.timedelta(minutes=5)))
    feed(tracker, unknown_account())
    assert tracker.failures("203.0.113.9", T0) == 2  # two requests, each naming nosuchuser; not three
    feed(tracker, [_event("InvalidAccountID", ATTACKER, f"scan{index}") for index in range(5)])  # a scanner
    assert tracker.failures("203.0.113.9", T0) == 7


def test_failures_older_than_the_window_do_not_count() -> None:
    tracker = FailureTracker(Policy(3, dt.timedelta(seconds=60)))
    for index in range(10):  # one every 31 s: at most 2 in any 60 s
        assert feed(tracker, wrong_password(), T0 + index * dt.timedelta(seconds=31)) == []
    assert tracker.failures("203.0.113.9", T0 + dt.timedelta(seconds=279)) == 2


def test_addresses_are_counted_apart() -> None:
    tracker = FailureTracker(Policy(2, dt.timedelta(minutes=5)))
    assert feed(tracker, wrong_password()) == []
    assert feed(tracker, wrong_password(remote="IPV4/UDP/198.51.100.4/5060")) == []
    assert len(feed(tracker, wrong_password())) == 1


def test_an_address_a_device_authenticated_from_lately_is_reported_not_banned() -> None:
    """A care home's shared NAT address, or one forged by a stranger: its pendants' successes vouch for it."""
    home = "IPV4/UDP/198.51.100.4/40000"
    tracker = FailureTracker(Policy(2, dt.timedelta(minutes=5)))
    tracker.observe(success(home), T0)
    [offence] = feed(tracker, wrong_password(home) * 2, T0 + dt.timedelta(minutes=1))
    assert offence.address == "198.51.100.4" and offence.trusted
    # A day later without a success, the address is judged like any other.
    later = T0 + TRUST + dt.timedelta(minutes=1)
    [offence] = feed(tracker, wrong_password(home) * 2, later)
    assert not offence.trusted


def test_other_services_and_the_threshold_zero_ban_nothing() -> None:
    tracker = FailureTracker(Policy(1, dt.timedelta(minutes=5)))
    ami = {**wrong_password()[1], "Event": "InvalidPassword", "Service": "AMI"}
    assert feed(tracker, [ami, {**success(ATTACKER), "Service": "AMI"}]) == []
    assert not tracker.trusted("203.0.113.9", T0)
    off = FailureTracker(Policy(0, dt.timedelta(minutes=5)))
    assert feed(off, wrong_password() * 50 + unknown_account() * 50) == []


def test_invalid_password_is_read_like_a_failed_challenge() -> None:
    tracker = FailureTracker(Policy(1, dt.timedelta(minutes=5)))
    assert len(feed(tracker, [_event("InvalidPassword", ATTACKER, "dev-1", Challenge="", ReceivedChallenge="",
                                     ReceivedHash="")])) == 1


def test_forget_starts_the_count_afresh() -> None:
    tracker = FailureTracker(Policy(2, dt.timedelta(minutes=5)))
    assert len(feed(tracker, wrong_password() * 2)) == 1
    tracker.forget("203.0.113.9")
    assert feed(tracker, wrong_password(), T0 + dt.timedelta(seconds=5)) == []


def test_remote_addresses_are_read_from_security_events() -> None:
    assert remote_address("IPV4/UDP/203.0.113.9/5061") == "203.0.113.9"
    assert remote_address("IPV6/UDP/2001:db8::7/5060") == "2001:db8::7"
    assert remote_address("IPV6/UDP/[2001:db8::7]/5060") == "2001:db8::7"
    assert remote_address("IPV6/UDP/::ffff:203.0.113.9/5060") == "203.0.113.9"
    assert remote_address("garbage") is None and remote_address("IPV4/UDP/nonsense/1") is None
