"""SIP hardening against a real Asterisk 22 and the platform process: brute-force bans through the PJSIP ACL, one
contact per device (the newest registration wins), and the AMI user's least privilege checked against what
Asterisk itself requires.

The stack here is this module's own (a small ban threshold and short windows through CC_SIP_BAN_*), so the test is
quick and no other module sees a ban. SIPp runs from 127.0.0.3 as the guesser and from 127.0.0.1 as the elder's
device: the stack's SIP transport listens on 127.0.0.1, and Linux delivers packets from any 127.0.0.0/8 source to
it, so Asterisk sees two different addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import callcenter
from callcenter.asterisk.render import AMI_READ_CLASSES, AMI_WRITE_CLASSES
from callcenter.audit.models import AuditEntry
from callcenter.db.session import Database
from callcenter.platform import assemble
from callcenter.sip_security.models import SipBan
from callcenter.telephony.ami import AmiClient
from tests import harness
from tests.integration.conftest import running_stack

GUESSER = "127.0.0.3"
FAILURES = 3
BAN_SECONDS = 15


@pytest.fixture(scope="module")
def sip_stack(tmp_path_factory: pytest.TempPathFactory, built_prompts: Path) -> Iterator[harness.Stack]:
    harness.require_tools()
    data_dir = tmp_path_factory.mktemp("stack-sip-security")
    env = {"CC_SIP_BAN_FAILURES": str(FAILURES), "CC_SIP_BAN_WINDOW_SECONDS": "60",
           "CC_SIP_BAN_SECONDS": str(BAN_SECONDS)}
    with harness.database_url("sqlite", data_dir) as url, running_stack(data_dir, url, built_prompts, env) as stack:
        yield stack


def _bans(stack: harness.Stack) -> list[SipBan]:
    async def fetch(db: Database) -> list[SipBan]:
        async with db.transaction() as session:
            return list((await session.scalars(select(SipBan).order_by(SipBan.id))).all())

    return stack.query(fetch)  # type: ignore[no-any-return]


def _register(stack: harness.Stack, sipp_dir: Path, *, local_ip: str, password: str,
              local_port: int | None = None) -> harness.SippResult:
    seeded = stack.seeded  # type: ignore[attr-defined]
    return harness.sipp(stack, "register", service=seeded.device_user, auth_user=seeded.device_user,
                        password=password, variables={"expires": "120"}, workdir=sipp_dir, timeout=5,
                        local_ip=local_ip, local_port=local_port)


def _logged(stack: harness.Stack, event: str) -> list[dict[str, object]]:
    """The platform's log entries named ``event`` so far (JSON lines)."""
    assert stack.platform_log is not None
    entries = []
    for line in stack.platform_log.read_text(errors="replace").splitlines():
        if f'"{event}"' in line:
            with contextlib.suppress(json.JSONDecodeError):
                entries.append(json.loads(line))
    return [entry for entry in entries if entry.get("event") == event]


def _contacts(stack: harness.Stack, aor: str) -> list[str]:
    """The contact URIs Asterisk holds for ``aor`` now."""
    output = stack.runtime.cli(f"pjsip show aor {aor}") or ""
    return re.findall(r"Contact:\s+" + re.escape(aor) + r"/(sip:\S+)", output)


def test_guessing_from_one_address_bans_it_while_the_device_elsewhere_keeps_calling(sip_stack: harness.Stack,
                                                                                    sipp_dir: Path) -> None:
    stack = sip_stack
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token()
    for _ in range(FAILURES):
        refused = harness.sipp(stack, "register_rejected", service=seeded.device_user, auth_user=seeded.device_user,
                               password="guessed-password", variables={"expires": "120"}, workdir=sipp_dir,
                               local_ip=GUESSER)
        assert refused.ok, refused.output
    last_failure = time.monotonic()
    [banned] = harness.eventually(lambda: _logged(stack, "sip_security.banned"), timeout=10,
                                  what="the ban of 127.0.0.3 applied")
    ban_applied = time.monotonic() - last_failure
    assert (banned["address"], banned["asterisk"]) == (GUESSER, "applied"), banned
    status, listed = stack.api("GET", "/api/v1/sip-bans", token=token)
    assert status == 200 and [item["address"] for item in listed["items"]] == [GUESSER], listed
    [ban] = _bans(stack)
    assert (ban.address, ban.failures, ban.accounts) == (GUESSER, FAILURES, [seeded.device_user])

    # Banned: even the right password gets no service from 127.0.0.3 — Asterisk answers 403 before any challenge.
    right_password = _register(stack, sipp_dir, local_ip=GUESSER, password=seeded.device_password)
    assert not right_password.ok and "403" in right_password.output, right_password.output
    # The elder's device at another address registers and calls as before.
    device = _register(stack, sipp_dir, local_ip="127.0.0.1", password=seeded.device_password)
    assert device.ok, device.output
    call = harness.sipp(stack, "call", service="12349", auth_user=seeded.device_user,
                        password=seeded.device_password, variables={"user": seeded.device_user, "hold_ms": "1500"},
                        workdir=sipp_dir)
    assert call.ok, call.output

    # The ban ends at its time, in Asterisk too: the right password from 127.0.0.3 works again.
    expires = ban.expires_at
    harness.eventually(lambda: _register(stack, sipp_dir, local_ip=GUESSER, password=seeded.device_password).ok,
                       timeout=BAN_SECONDS + 40, what="127.0.0.3 to be served after the ban expired")
    served_after = dt.datetime.now(dt.UTC) - expires
    [lifted] = _bans(stack)
    assert lifted.lifted_by == "expiry" and lifted.lifted_at is not None
    assert stack.api("GET", "/api/v1/sip-bans", token=token)[1]["items"] == []

    async def audited(db: Database) -> list[str]:
        async with db.transaction() as session:
            return list((await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("sip_ban.%"))
                                               .order_by(AuditEntry.id))).all())

    assert stack.query(audited) == ["sip_ban.create", "sip_ban.expired"]
    print(f"ban applied in Asterisk {ban_applied:.2f} s after the last failure ended; 127.0.0.3 served again "
          f"{served_after.total_seconds():.2f} s after the ban's expiry")
    assert ban_applied < 5 and served_after < dt.timedelta(seconds=5), (ban_applied, served_after)


def test_an_admin_lifts_a_ban_and_the_address_is_served_at_once(sip_stack: harness.Stack, sipp_dir: Path) -> None:
    stack = sip_stack
    seeded = stack.seeded  # type: ignore[attr-defined]
    for _ in range(FAILURES):
        assert harness.sipp(stack, "register_rejected", service=seeded.device_user, auth_user=seeded.device_user,
                            password="another-guess", variables={"expires": "120"}, workdir=sipp_dir,
                            local_ip="127.0.0.5").ok
    ban = harness.eventually(lambda: [b for b in _bans(stack) if b.address == "127.0.0.5" and b.lifted_at is None],
                             timeout=10, what="the ban of 127.0.0.5")[0]
    assert not _register(stack, sipp_dir, local_ip="127.0.0.5", password=seeded.device_password).ok
    status, lifted = stack.api("DELETE", f"/api/v1/sip-bans/{ban.id}", token=stack.token())
    assert status == 200 and lifted["provisioning"] == "applied", lifted
    result = _register(stack, sipp_dir, local_ip="127.0.0.5", password=seeded.device_password)
    assert result.ok, result.output


def test_a_second_registration_of_a_device_replaces_the_first(sip_stack: harness.Stack, sipp_dir: Path) -> None:
    """docs/security.md: the newest registration wins, so a device that rebooted or moved behind a new NAT mapping
    is reachable at once; the old contact is removed, never kept beside it."""
    stack = sip_stack
    seeded = stack.seeded  # type: ignore[attr-defined]
    first_port, second_port = harness.free_udp_port(), harness.free_udp_port("127.0.0.4")
    assert _register(stack, sipp_dir, local_ip="127.0.0.1", password=seeded.device_password,
                     local_port=first_port).ok
    assert _contacts(stack, seeded.device_user) == [f"sip:{seeded.device_user}@127.0.0.1:{first_port}"]
    assert _register(stack, sipp_dir, local_ip="127.0.0.4", password=seeded.device_password,
                     local_port=second_port).ok
    assert _contacts(stack, seeded.device_user) == [f"sip:{seeded.device_user}@127.0.0.4:{second_port}"]


# -- the AMI user's privileges -------------------------------------------------------------------------------------

# The actions the platform sends whose name is not a literal "Action": "…" in the source (conferences passes it in).
ACTIONS_BY_NAME = ("ConfbridgeMute", "ConfbridgeUnmute", "ConfbridgeKick")
# Events read outside a subscription: the Originate answer (telephony.originate) and the boot signal (telephony.ami).
EVENTS_WAITED_FOR = ("OriginateResponse", "FullyBooted")


def platform_actions() -> set[str]:
    """Every AMI action the platform sends: the literals in its source, the heartbeat, and ACTIONS_BY_NAME."""
    root = Path(callcenter.__file__).parent
    found = {"Ping", *ACTIONS_BY_NAME}
    for path in root.rglob("*.py"):
        found |= set(re.findall(r'"Action":\s*"(\w+)"', path.read_text(encoding="utf-8")))
    return found - {"Login", "Logoff"}


def platform_events(stack: harness.Stack) -> set[str]:
    """Every event the assembled platform subscribes to, plus those it waits for outside a subscription."""
    db = Database(stack.settings.database_url)
    try:
        assembly = assemble(stack.settings, db=db, ami=AmiClient("127.0.0.1", harness.free_tcp_port(), "u", "s"))
        return {event for _, contribution in assembly.contributions for subscription in contribution.ami
                for event in subscription.events} | set(EVENTS_WAITED_FOR)
    finally:
        asyncio.run(db.dispose())


def event_classes(stack: harness.Stack) -> dict[str, set[str]]:
    """Each AMI event's class as Asterisk documents it (EVENT_FLAG_CALL → call)."""
    path = stack.runtime.host_path(Path("/usr/share/asterisk/documentation/core-en_US.xml"))
    classes: dict[str, set[str]] = {}
    for event in ET.parse(path).getroot().iter("managerEvent"):
        for instance in event.iter("managerEventInstance"):
            flag = instance.get("class", "")
            if flag.startswith("EVENT_FLAG_"):
                classes.setdefault(event.get("name", ""), set()).add(flag.removeprefix("EVENT_FLAG_").lower())
    return classes


def action_privileges(stack: harness.Stack, action: str) -> set[str]:
    """The classes Asterisk lets ``action`` through for (any one suffices); empty: needs none."""
    output = stack.runtime.cli(f"manager show command {action}") or ""
    match = re.search(r"\[Privilege\]\s*\n\s*(\S+)", output)
    assert match is not None, f"Asterisk does not know the action {action}: {output[:300]}"
    return set() if match.group(1) == "<none>" else set(match.group(1).split(",")) - {"all"}


def test_the_ami_user_reads_exactly_the_event_classes_the_platform_uses(sip_stack: harness.Stack) -> None:
    stack = sip_stack
    documented = event_classes(stack)
    events = platform_events(stack)
    assert {"ChallengeResponseFailed", "AgentConnect", "UserEvent", "Newchannel"} <= events
    missing = sorted(event for event in events if event not in documented)
    # QueueMember only ever comes as part of QueueStatus's answer, which reaches the session whatever its classes.
    assert missing == ["QueueMember"], missing
    needed = {flag for event in events if event in documented for flag in documented[event]}
    assert needed == set(AMI_READ_CLASSES)


def test_the_ami_user_may_send_every_action_the_platform_sends_and_holds_no_class_it_does_not_need(
        sip_stack: harness.Stack) -> None:
    stack = sip_stack
    privileges = {action: action_privileges(stack, action) for action in sorted(platform_actions())}
    assert {"Originate", "Redirect", "QueueAdd", "Reload", "CoreShowChannels", "ConfbridgeKick"} <= set(privileges)
    granted = set(AMI_WRITE_CLASSES)
    refused = {action: needs for action, needs in privileges.items() if needs and not needs & granted}
    assert refused == {}, refused
    # Least privilege: each class granted is the only way at least one of those actions gets through.
    needless = {flag for flag in granted
                if all(not needs or needs & (granted - {flag}) for needs in privileges.values())}
    assert needless == set(), (needless, privileges)
    assert not {"command", "system"} & granted
    # The classes Asterisk names, for the record (docs/security.md quotes them).
    assert privileges["Reload"] == {"system", "config"} and privileges["Originate"] == {"originate"}
