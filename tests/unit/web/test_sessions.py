"""The panel's session store, cookie signer and CSRF tokens."""

from __future__ import annotations

import datetime as dt

import pytest

from callcenter.api.errors import Unauthorized
from callcenter.api.tokens import InvalidToken, TokenClaims, TokenService
from callcenter.recordings.access import Grant, GrantSigner
from callcenter.users.models import Role
from callcenter.web.sessions import SessionStore, Signer

NOW = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)


def store(max_sessions: int = 100) -> SessionStore:
    return SessionStore(Signer(b"k" * 32), max_sessions=max_sessions)


def create(sessions: SessionStore, username: str = "agent01", *, hours: int = 12) -> tuple[object, str]:
    return sessions.create(user_id=1, username=username, display_name=None, role=Role.AGENT, api_token="tok",
                           login_session_id="s-1", expires_at=NOW + dt.timedelta(hours=hours), now=NOW)


def test_signed_values_round_trip_and_tampering_is_refused() -> None:
    signer = Signer(b"s" * 32)
    signed = signer.sign("abc")
    assert signer.unsign(signed) == "abc"
    value, _, mac = signed.rpartition(".")
    for bad in (None, "", "abc", f"abd.{mac}", f"{value}.{mac[:-1]}x", f"{value}.", "ä.ö", f"{signed}."):
        assert signer.unsign(bad) is None, bad
    assert Signer(b"t" * 32).unsign(signed) is None  # another key


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Signer(b"short")


def test_csrf_tokens_are_bound_to_their_nonce_and_purpose() -> None:
    signer = Signer(b"s" * 32)
    token = signer.csrf_for("nonce-1")
    assert signer.csrf_ok("nonce-1", token)
    assert not signer.csrf_ok("nonce-2", token)
    assert not signer.csrf_ok("nonce-1", None) and not signer.csrf_ok("nonce-1", "") \
        and not signer.csrf_ok("nonce-1", "é")
    # A signed cookie is not a CSRF token for the same value, nor the other way round.
    assert signer.sign("nonce-1").rpartition(".")[2] != token
    assert signer.unsign(f"nonce-1.{token}") is None


def test_sessions_are_found_by_signed_cookie_only_and_end_at_expiry_or_drop() -> None:
    sessions = store()
    session, cookie = create(sessions)
    assert sessions.get(cookie, NOW) == session
    assert sessions.get(session.id, NOW) is None  # the bare id, unsigned
    assert sessions.get(None, NOW) is None
    assert session.csrf_token == sessions.signer.csrf_for(session.id)
    assert sessions.get(cookie, NOW + dt.timedelta(hours=12)) is None  # expired, and forgotten
    assert len(sessions) == 0
    session, cookie = create(sessions)
    sessions.drop(session.id)
    assert sessions.get(cookie, NOW) is None


def test_every_log_in_gets_a_fresh_id_and_the_store_is_bounded() -> None:
    sessions = store(max_sessions=3)
    ids = [create(sessions, f"u{n}", hours=n + 1)[0].id for n in range(4)]
    assert len(set(ids)) == 4
    assert len(sessions) == 3
    # The one closest to its end made room.
    assert sessions.get(sessions.signer.sign(ids[0]), NOW) is None
    assert sessions.get(sessions.signer.sign(ids[3]), NOW) is not None


def test_derived_keys_differ_by_purpose_and_from_the_token_key() -> None:
    tokens = TokenService(b"x" * 32, 3600)
    assert tokens.derived_key("panel-session") != tokens.derived_key("other")
    assert tokens.derived_key("panel-session") != b"x" * 32
    assert len(tokens.derived_key("panel-session")) == 32


def test_a_value_signed_for_one_purpose_never_verifies_for_another() -> None:
    tokens = TokenService(b"x" * 32, 3600)
    token, expires_at = tokens.issue(7, Role.AUDITOR, "session-1", NOW)
    assert tokens.verify(token, NOW) == TokenClaims(7, Role.AUDITOR, "session-1", expires_at)
    grant = GrantSigner(b"x" * 32).issue(Grant(1, 7, False, 1, NOW + dt.timedelta(minutes=5)))
    with pytest.raises(InvalidToken, match="signature"):
        tokens.verify(grant, NOW)  # the same key, another purpose
    with pytest.raises(Unauthorized):
        GrantSigner(b"x" * 32).verify(token, 1, NOW)
    cookie = Signer(b"x" * 32).sign("abc")
    with pytest.raises(InvalidToken):
        tokens.verify(cookie, NOW)

