"""Accounts for their whole life (issue 14): log-out, sessions listed and revoked, disable/enable, role changes,
password reset and change, unlock, the second factor, a deactivated provider — each taking effect at once on tokens
and on open WebSockets."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from callcenter import push
from callcenter.audit.models import AuditEntry
from callcenter.desk.http import HUB
from callcenter.providers.reporting import sign_request
from callcenter.users.models import Role, User, UserSession
from tests.apiclient import PASSWORD, Api

STRONG = "lantern-orchard-quietly-9"


async def _login(api: Api, username: str, password: str = PASSWORD, **extra: str) -> tuple[int, dict[str, Any]]:
    return await api.request("POST", "/api/v1/auth/login", role=None,
                             json={"username": username, "password": password, **extra})


async def _token(api: Api, username: str, password: str = PASSWORD, **extra: str) -> str:
    status, body = await _login(api, username, password, **extra)
    assert status == 200, body
    return str(body["token"])


async def _works(api: Api, token: str) -> int:
    return (await api.request("GET", "/api/v1/auth/sessions", token=token))[0]


async def _actions(api: Api) -> list[str]:
    async with api.db.transaction() as session:
        return list((await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all())


async def _closed_with(socket: Any) -> int:
    """Read a socket until it closes; its close code."""
    while True:
        message = await socket.receive(timeout=5)
        if message.type.name in {"CLOSE", "CLOSED", "CLOSING"}:
            return int(socket.close_code)


async def test_logout_ends_only_that_token_and_sessions_are_listed_and_revoked(api: Api) -> None:
    await api.user(Role.AGENT, username="agent01")
    desk, laptop = await _token(api, "agent01"), await _token(api, "agent01")
    status, mine = await api.request("GET", "/api/v1/auth/sessions", token=desk)
    assert status == 200 and len(mine["items"]) == 2
    assert [s["current"] for s in mine["items"]].count(True) == 1
    assert {s["kind"] for s in mine["items"]} == {"api"} and mine["items"][0]["source_ip"] == "127.0.0.1"

    status, body = await api.request("POST", "/api/v1/auth/logout", token=desk)
    assert status == 200 and body == {"ended": 1}
    status, body = await api.request("GET", "/api/v1/auth/sessions", token=desk)
    assert status == 401 and body["error"]["code"] == "session_ended" and "logout" in body["error"]["message"]
    assert await _works(api, laptop) == 200  # the other log-in goes on

    # A forgotten desk: the agent ends another of their sessions from here.
    third = await _token(api, "agent01")
    status, listed = await api.request("GET", "/api/v1/auth/sessions", token=laptop)
    other = next(s["id"] for s in listed["items"] if not s["current"])
    status, body = await api.request("DELETE", f"/api/v1/auth/sessions/{other}", token=laptop)
    assert status == 200 and body == {"ended": 1}
    assert await _works(api, third) == 401 and await _works(api, laptop) == 200
    status, body = await api.request("DELETE", f"/api/v1/auth/sessions/{other}", token=laptop)
    assert status == 404 and body["error"]["field"] == "session_id"
    assert {"auth.logout", "auth.session_revoked"} <= set(await _actions(api))


async def _desk(api: Api, token: str) -> Any:
    """The agent desk's WebSocket opened with ``token``, past its hello."""
    socket = await api.socket("/ws", token)
    assert (await socket.receive_json(timeout=5))["type"] == "hello"
    return socket


async def _session_id(api: Api, token: str) -> str:
    """The id of the log-in session ``token`` names."""
    status, listed = await api.request("GET", "/api/v1/auth/sessions", token=token)
    assert status == 200, listed
    return str(next(s["id"] for s in listed["items"] if s["current"]))


async def _served(api: Api, socket: Any, username: str, open_sockets: int) -> None:
    """``socket`` is still open and fed: a push to its account reaches it, and ``open_sockets`` of that account's
    pages took it (the ended session's page is no longer subscribed)."""
    probe = {"type": "probe", "nonce": secrets.token_hex(4)}
    assert api.client.app[HUB].publish(push.user(username), probe) == open_sockets
    assert await socket.receive_json(timeout=5) == probe
    assert not socket.closed


# How one log-in session (``ended``) of an account is ended while another (``kept``) goes on; the API's answer.
EndOne = Callable[[Api, str, str, str], Awaitable[tuple[int, Any]]]


async def _log_out(api: Api, _username: str, ended: str, _kept: str) -> tuple[int, Any]:
    return await api.request("POST", "/api/v1/auth/logout", token=ended)


async def _revoke_from_another_desk(api: Api, _username: str, ended: str, kept: str) -> tuple[int, Any]:
    return await api.request("DELETE", f"/api/v1/auth/sessions/{await _session_id(api, ended)}", token=kept)


async def _admin_ends_it(api: Api, username: str, ended: str, _kept: str) -> tuple[int, Any]:
    return await api.request("DELETE", f"/api/v1/users/{username}/sessions/{await _session_id(api, ended)}")


@pytest.mark.parametrize("end_one", [_log_out, _revoke_from_another_desk, _admin_ends_it],
                         ids=["logout", "own_revoke", "admin_revoke"])
async def test_ending_one_session_closes_its_websocket_and_no_other(api: Api, end_one: EndOne) -> None:
    await api.user(Role.AGENT, username="agent06")
    ended, kept = await _token(api, "agent06"), await _token(api, "agent06")
    ended_desk, kept_desk = await _desk(api, ended), await _desk(api, kept)

    status, body = await end_one(api, "agent06", ended, kept)
    assert status == 200 and body == {"ended": 1}
    assert await _closed_with(ended_desk) == 4401
    await _served(api, kept_desk, "agent06", open_sockets=1)
    assert await _works(api, ended) == 401 and await _works(api, kept) == 200


async def test_an_admin_ending_an_accounts_sessions_closes_its_websockets_and_no_other_accounts(api: Api) -> None:
    await api.user(Role.AGENT, username="agent09")
    await api.user(Role.AGENT, username="agent10")
    first, second = await _desk(api, await _token(api, "agent09")), await _desk(api, await _token(api, "agent09"))
    colleague = await _desk(api, await _token(api, "agent10"))

    status, body = await api.request("DELETE", "/api/v1/users/agent09/sessions")
    assert status == 200 and body == {"ended": 2}
    assert [await _closed_with(first), await _closed_with(second)] == [4401, 4401]
    await _served(api, colleague, "agent10", open_sockets=1)
    assert api.client.app[HUB].publish(push.user("agent09"), {"type": "probe"}) == 0


async def test_disabling_an_account_ends_its_tokens_and_closes_its_websockets_at_once(api: Api) -> None:
    agent = await api.user(Role.AGENT, username="agent02")
    token = await _token(api, "agent02")
    socket = await api.socket("/ws", token)
    assert (await socket.receive_json(timeout=5))["type"] == "hello"

    status, body = await api.request("PATCH", "/api/v1/users/agent02", json={"active": False})
    assert status == 200 and body["active"] is False
    assert await _closed_with(socket) == 4401
    assert await _works(api, token) == 401
    status, body = await _login(api, "agent02")
    assert status == 401 and body["error"]["code"] == "account_inactive"
    async with api.db.transaction() as session:
        rows = (await session.scalars(select(UserSession).where(UserSession.user_id == agent.id))).all()
        assert [row.revoked_reason for row in rows] == ["disabled"]

    status, body = await api.request("PATCH", "/api/v1/users/agent02", json={"active": True, "display_name": "坐席二"})
    assert status == 200 and (body["active"], body["display_name"]) == (True, "坐席二")
    assert await _works(api, token) == 401  # re-enabling does not bring old sessions back
    assert await _works(api, await _token(api, "agent02")) == 200
    entry = [a for a in await _actions(api) if a == "user.update"]
    assert len(entry) == 2


async def test_a_role_change_ends_sessions_and_the_last_admin_stays(api: Api) -> None:
    await api.user(Role.SUPERVISOR, username="sup01")
    token = await _token(api, "sup01")
    status, body = await api.request("PATCH", "/api/v1/users/sup01", json={"role": "auditor"})
    assert status == 200 and body["role"] == "auditor"
    status, body = await api.request("GET", "/api/v1/auth/sessions", token=token)
    assert status == 401 and "role_changed" in body["error"]["message"]

    # The only active admin (the test client's own) can neither be disabled nor demoted.
    status, admins = await api.request("GET", "/api/v1/users", params={"role": "admin"})
    assert status == 200 and len(admins["items"]) == 1
    only_admin = admins["items"][0]["username"]
    for change, field in (({"active": False}, "active"), ({"role": "agent"}, "role")):
        status, body = await api.request("PATCH", f"/api/v1/users/{only_admin}", json=change)
        assert status == 409 and body["error"]["field"] == field, body
    # Provider accounts belong to their provider; nobody becomes one by a PATCH.
    status, body = await api.request("PATCH", "/api/v1/users/sup01", json={"role": "provider"})
    assert status == 409 and body["error"]["field"] == "role"
    for bad in ({"active": None}, {"role": "root"}, {"language": "fr"}, {"username": "x"}):
        status, body = await api.request("PATCH", "/api/v1/users/sup01", json=bad)
        assert status == 422, (bad, body)
    assert (await api.request("PATCH", "/api/v1/users/sup01", role=Role.SUPERVISOR, json={"active": False}))[0] == 403


async def test_passwords_are_reset_by_an_admin_and_changed_by_their_owner_under_the_policy(api: Api) -> None:
    await api.user(Role.AGENT, username="agent03")
    old = await _token(api, "agent03")
    for weak in ("password123", "qwertyuiop", "agent03agent03", "short"):
        status, body = await api.request("POST", "/api/v1/users/agent03/password", json={"password": weak})
        assert status == 422 and body["error"]["field"] == "password", (weak, body)
    assert await _works(api, old) == 200  # a refused reset changes nothing
    status, body = await api.request("POST", "/api/v1/users/agent03/password", json={"password": STRONG})
    assert status == 200 and body["password_changed_at"] is not None
    assert await _works(api, old) == 401
    assert (await _login(api, "agent03"))[0] == 401

    here, elsewhere = await _token(api, "agent03", STRONG), await _token(api, "agent03", STRONG)
    status, body = await api.request("POST", "/api/v1/auth/password", token=here,
                                     json={"current_password": "not-my-password", "new_password": PASSWORD})
    assert status == 403 and body["error"]["field"] == "current_password"
    status, body = await api.request("POST", "/api/v1/auth/password", token=here,
                                     json={"current_password": STRONG, "new_password": "woaini1314"})
    assert status == 422 and body["error"]["field"] == "new_password"
    status, body = await api.request("POST", "/api/v1/auth/password", token=here,
                                     json={"current_password": STRONG, "new_password": PASSWORD})
    assert status == 200 and body == {"ended": 1}
    assert await _works(api, here) == 200 and await _works(api, elsewhere) == 401
    assert await _token(api, "agent03")
    actions = await _actions(api)
    assert {"user.password_reset", "user.password_change", "user.password_change_refused"} <= set(actions)


async def test_an_admin_unlocks_an_account_locked_from_an_address(api: Api) -> None:
    await api.user(Role.AGENT, username="agent04")
    for _ in range(5):
        assert (await _login(api, "agent04", "wrong-password-x"))[0] == 401
    status, body = await _login(api, "agent04")
    assert status == 423, body
    status, body = await api.request("POST", "/api/v1/users/agent04/unlock")
    assert status == 200 and body == {"username": "agent04", "addresses_cleared": 1}
    assert (await _login(api, "agent04"))[0] == 200
    assert (await api.request("POST", "/api/v1/users/agent04/unlock", role=Role.SUPERVISOR))[0] == 403
    assert (await api.request("POST", "/api/v1/users/nobody/unlock"))[0] == 404
    assert "user.unlock" in await _actions(api)


async def test_an_admin_lists_and_ends_another_accounts_sessions(api: Api) -> None:
    await api.user(Role.AUDITOR, username="aud01")
    first, second = await _token(api, "aud01"), await _token(api, "aud01")
    status, listed = await api.request("GET", "/api/v1/users/aud01/sessions")
    assert status == 200 and len(listed["items"]) == 2 and not any(s["current"] for s in listed["items"])
    status, body = await api.request("DELETE", f"/api/v1/users/aud01/sessions/{listed['items'][0]['id']}")
    assert status == 200 and body == {"ended": 1}
    assert sorted([await _works(api, first), await _works(api, second)]) == [200, 401]
    status, body = await api.request("DELETE", "/api/v1/users/aud01/sessions")
    assert status == 200 and body == {"ended": 1}
    assert await _works(api, first) == 401 and await _works(api, second) == 401
    assert (await api.request("GET", "/api/v1/users/aud01/sessions", role=Role.SUPERVISOR))[0] == 403


def _not_a_code(totp: pyotp.TOTP, at: dt.datetime) -> str:
    """Six digits that are the code of no step near ``at``."""
    near = {totp.at(at + dt.timedelta(seconds=30 * step)) for step in (-2, -1, 0, 1, 2)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in near)


async def test_the_second_factor_for_admins_and_auditors(api: Api) -> None:
    await api.user(Role.AUDITOR, username="aud02")
    token = await _token(api, "aud02")
    status, setup = await api.request("POST", "/api/v1/auth/totp", token=token)
    assert status == 200 and setup["uri"].startswith("otpauth://totp/") and "aud02" in setup["uri"]
    totp, now = pyotp.TOTP(setup["secret"]), dt.datetime.now(dt.UTC)
    assert await _token(api, "aud02")  # pending: no code needed until confirmed
    status, body = await api.request("POST", "/api/v1/auth/totp/confirm", token=token,
                                     json={"code": _not_a_code(totp, now)})
    assert status == 422 and body["error"]["field"] == "code"
    status, body = await api.request("POST", "/api/v1/auth/totp/confirm", token=token, json={"code": totp.at(now)})
    assert status == 200 and body["second_factor_since"] is not None

    status, body = await _login(api, "aud02")
    assert status == 401 and body["error"]["code"] == "otp_required" and body["error"]["field"] == "otp"
    status, body = await _login(api, "aud02", otp=_not_a_code(totp, now))
    assert status == 401 and body["error"]["code"] == "bad_credentials"
    # The code that confirmed is spent: it cannot log in (a code seen over a shoulder is not replayed).
    status, body = await _login(api, "aud02", otp=totp.at(now))
    assert status == 401 and body["error"]["code"] == "bad_credentials"
    following = totp.at(now + dt.timedelta(seconds=30))  # the next step's code (one step of drift is allowed)
    status, body = await _login(api, "aud02", otp=following)
    assert status == 200, body
    assert (await _login(api, "aud02", otp=following))[0] == 401  # spent too
    reasons = await _login_failure_reasons(api)
    assert reasons.count("bad_otp") == 3

    agent = await api.user(Role.AGENT, username="agent05")
    status, body = await api.request("POST", "/api/v1/auth/totp", token=await api.token_for(agent))
    assert status == 403
    status, body = await api.request("DELETE", "/api/v1/users/aud02/totp")
    assert status == 200 and body["second_factor_since"] is None
    assert await _token(api, "aud02")
    assert {"user.totp_setup", "user.totp_enabled", "user.totp_reset"} <= set(await _actions(api))


async def _login_failure_reasons(api: Api) -> list[str]:
    async with api.db.transaction() as session:
        rows = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.login_failed"))).all()
        return [str(row.details.get("reason")) for row in rows]


async def test_a_deactivated_provider_stops_its_portal_accounts_sockets_and_api_keys(api: Api) -> None:
    status, provider = await api.request("POST", "/api/v1/providers", json={
        "name": "停用家政", "services": ["cleaning"], "communities": ["幸福社区"]})
    assert status == 201, provider
    status, account = await api.request("POST", f"/api/v1/providers/{provider['id']}/accounts",
                                        json={"username": "stopped-portal", "password": PASSWORD})
    assert status == 201, account
    token = await _token(api, "stopped-portal")
    socket = await api.socket("/provider/ws", token)
    assert (await socket.receive_json(timeout=5))["type"] == "hello"
    status, key = await api.request("POST", f"/api/v1/providers/{provider['id']}/api-keys")
    assert status == 201, key

    status, body = await api.request("PATCH", f"/api/v1/providers/{provider['id']}", json={"active": False})
    assert status == 200 and body["active"] is False
    assert await _closed_with(socket) == 4401
    assert await _works(api, token) == 401
    status, body = await _login(api, "stopped-portal")
    assert status == 200  # the password is right, but the token it gets opens nothing
    status, body = await api.request("GET", "/api/v1/auth/sessions", token=body["token"])
    assert status == 401 and body["error"]["code"] == "provider_inactive"
    # Its signing key is refused too (providers.reporting).
    payload = b'{"report_id": "r-1"}'
    headers = sign_request(key["key_id"], key["secret"], payload, dt.datetime.now(dt.UTC))
    response = await api.client.post("/api/v1/provider-reports", data=payload,
                                     headers={**headers, "Content-Type": "application/json"})
    assert response.status == 401 and (await response.json())["error"]["code"] == "provider_inactive"
    async with api.db.transaction() as session:
        user = await session.scalar(select(User).where(User.username == "stopped-portal"))
        rows = (await session.scalars(select(UserSession).where(UserSession.user_id == user.id))).all()
        assert "provider_deactivated" in {row.revoked_reason for row in rows}
