"""Log-in, per-address lock-out and throttling, tokens (expired, tampered, of a disabled account) and role checks,
over HTTP."""

from __future__ import annotations

import datetime as dt
import os
import stat
import time

import aiohttp
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from callcenter.api.tokens import TokenService, load_token_key, token_key_path
from callcenter.audit.models import AuditEntry
from callcenter.config import ConfigError, Settings
from callcenter.db.base import utcnow
from callcenter.users.login_guard import TARPIT_SECONDS
from callcenter.users.models import Role, User
from tests.apiclient import PASSWORD, Api


async def _audit(api: Api) -> list[tuple[str, str | None, str | None]]:
    async with api.db.transaction() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        return [(r.action, r.actor_label, r.source_ip) for r in rows]


async def _login(api: Api, username: str, password: str) -> tuple[int, dict]:
    return await api.request("POST", "/api/v1/auth/login", role=None,
                             json={"username": username, "password": password})


async def test_login_returns_a_token_that_opens_the_api(api: Api) -> None:
    user = await api.user(Role.AGENT, username="agent01")
    status, body = await _login(api, "agent01", PASSWORD)
    assert status == 200, body
    assert body["user"] == {**body["user"], "id": user.id, "username": "agent01", "role": "agent"}
    assert "password_hash" not in body["user"] and "sip_ha1" not in body["user"]
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=11, minutes=59) < expires - utcnow() <= dt.timedelta(hours=12)
    status, _ = await api.request("GET", "/api/v1/elders", token=body["token"])
    assert status == 200
    assert (await _audit(api))[-1][:2] == ("auth.login", "agent01")
    assert (await _audit(api))[-1][2] == "127.0.0.1"


async def test_wrong_password_and_unknown_user_are_401_and_audited(api: Api) -> None:
    await api.user(Role.AGENT, username="agent01")
    status, body = await _login(api, "agent01", "not-the-password")
    assert status == 401 and body["error"]["code"] == "bad_credentials"
    status, body = await _login(api, "nobody", PASSWORD)
    assert status == 401 and body["error"]["code"] == "bad_credentials"
    assert [a[:2] for a in await _audit(api)] == [("auth.login_failed", "agent01"), ("auth.login_failed", "nobody")]


async def _login_from(api: Api, address: str, username: str, password: str) -> tuple[int, dict, dict[str, str]]:
    """A log-in sent from ``address`` (a loopback address other than the test client's)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.post(
            api.client.make_url("/api/v1/auth/login"), json={"username": username, "password": password}) as answer:
        return answer.status, await answer.json(), dict(answer.headers)


async def test_five_failures_lock_the_username_for_that_address_only_and_say_nothing_of_existence(api: Api) -> None:
    await api.user(Role.ADMIN, username="admin")
    for username in ("admin", "ghost"):  # an account, and a name nobody has: the same answers
        statuses = [(await _login_from(api, "127.0.0.2", username, f"wrong-{i}"))[0] for i in range(5)]
        assert statuses == [401] * 5, username
        status, body, headers = await _login_from(api, "127.0.0.2", username, PASSWORD)
        assert status == 423, username  # even the right password, from this address
        assert body["error"]["code"] == "account_locked" and "15 minutes" in body["error"]["message"]
        assert 14 * 60 < int(headers["Retry-After"]) <= 15 * 60
    # The real administrator, from another address, is not locked out.
    status, _ = await _login(api, "admin", PASSWORD)
    assert status == 200
    actions = [(a[0], a[1], a[2]) for a in await _audit(api)]
    assert actions == ([("auth.login_failed", "admin", "127.0.0.2")] * 5
                       + [("auth.login_throttled", "admin", "127.0.0.2")]
                       + [("auth.login_failed", "ghost", "127.0.0.2")] * 5
                       + [("auth.login_throttled", "ghost", "127.0.0.2")]
                       + [("auth.login", "admin", "127.0.0.1")])


async def test_an_address_sending_too_many_attempts_gets_429_without_a_password_check(api: Api) -> None:
    await api.user(Role.AGENT, username="agent01")
    answers = [await _login_from(api, "127.0.0.2", "ghost", "guess") for _ in range(61)]
    assert [a[0] for a in answers] == [401] * 5 + [423] * 55 + [429]
    _, body, headers = answers[-1]
    assert body["error"]["code"] == "too_many_requests" and 1 <= int(headers["Retry-After"]) <= 60
    # From now on the address is refused before its request is even read, its answer held a few seconds (a
    # tarpit: a flood's connection sends a few requests a minute, not hundreds a second), the connection closed.
    held_from = time.monotonic()
    status, body, headers = await _login_from(api, "127.0.0.2", "admin", PASSWORD)
    assert time.monotonic() - held_from >= TARPIT_SECONDS - 0.5
    assert status == 429 and body["error"]["code"] == "too_many_requests"
    assert headers.get("Connection", "").lower() == "close" and 1 <= int(headers["Retry-After"]) <= 60
    assert (await _login(api, "agent01", PASSWORD))[0] == 200  # another address is not affected
    throttled = [a for a in await _audit(api) if a[0] == "auth.login_throttled"]
    assert len(throttled) == 2  # the first 423 and the first 429 of the minute, not 56 entries


async def test_a_success_resets_the_count_so_only_consecutive_failures_lock(api: Api) -> None:
    await api.user(Role.AGENT, username="agent01")
    for _ in range(4):
        assert (await _login(api, "agent01", "wrong-password"))[0] == 401
    assert (await _login(api, "agent01", PASSWORD))[0] == 200
    for _ in range(4):
        assert (await _login(api, "agent01", "wrong-password"))[0] == 401
    assert (await _login(api, "agent01", PASSWORD))[0] == 200


async def test_disabled_account_cannot_log_in_and_its_tokens_stop_working(api: Api) -> None:
    user = await api.user(Role.AGENT, username="agent01")
    token = await api.token_for(user)
    assert (await api.request("GET", "/api/v1/elders", token=token))[0] == 200
    async with api.db.transaction() as session:
        (await session.get(User, user.id)).active = False
    status, body = await api.request("GET", "/api/v1/elders", token=token)
    assert status == 401 and body["error"]["code"] == "invalid_token"
    status, body = await _login(api, "agent01", PASSWORD)
    assert status == 401 and body["error"]["code"] == "account_inactive"


async def test_expired_tampered_and_foreign_tokens_are_401(api: Api) -> None:
    user = await api.user(Role.ADMIN, username="boss")
    expired, _ = api.tokens.issue(user.id, user.role, "no-such-session", utcnow() - dt.timedelta(hours=13))
    valid = await api.token_for(user)
    payload, _, signature = valid.rpartition(".")
    unsigned = URLSafeSerializer(b"only the payload's encoding is used")
    forged_payload = unsigned.dump_payload({**unsigned.load_payload(payload.encode()), "sub": 999}).decode()
    foreign, _ = TokenService(b"k" * 32, 3600).issue(user.id, user.role, "no-such-session", utcnow())
    cases = {"expired": expired, "tampered": f"{forged_payload}.{signature}", "foreign": foreign,
             "garbage": "not-a-token", "truncated": valid[:-3]}
    for name, token in cases.items():
        status, body = await api.request("GET", "/api/v1/elders", token=token)
        assert status == 401, name
        assert body["error"]["code"] == "invalid_token", name
    status, body = await api.request("GET", "/api/v1/elders", token=expired)
    assert "expired" in body["error"]["message"]


async def test_a_token_of_a_changed_role_must_be_renewed(api: Api) -> None:
    user = await api.user(Role.SUPERVISOR)
    token = await api.token_for(user)
    async with api.db.transaction() as session:
        (await session.get(User, user.id)).role = Role.AUDITOR
    status, body = await api.request("GET", "/api/v1/elders", token=token)
    assert status == 401 and "role changed" in body["error"]["message"]


async def test_no_token_is_401_with_a_bearer_challenge(api: Api) -> None:
    response = await api.client.get("/api/v1/elders")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"]["code"] == "unauthorized"
    response = await api.client.get("/api/v1/elders", headers={"Authorization": "Basic YWRtaW46eA=="})
    assert response.status == 401


async def test_roles(api: Api) -> None:
    """admin everything; supervisor/agent elders rw, devices/calls/orders read; auditor reads calls, orders,
    elders; provider nothing."""
    expected = {
        ("GET", "/api/v1/elders"): {Role.ADMIN, Role.SUPERVISOR, Role.AGENT, Role.AUDITOR},
        ("POST", "/api/v1/elders"): {Role.ADMIN, Role.SUPERVISOR, Role.AGENT},
        ("GET", "/api/v1/devices"): {Role.ADMIN, Role.SUPERVISOR, Role.AGENT},
        ("POST", "/api/v1/devices"): {Role.ADMIN},
        ("GET", "/api/v1/calls"): {Role.ADMIN, Role.SUPERVISOR, Role.AGENT, Role.AUDITOR},
        ("GET", "/api/v1/work-orders"): {Role.ADMIN, Role.SUPERVISOR, Role.AGENT, Role.AUDITOR},
        ("GET", "/api/v1/users"): {Role.ADMIN, Role.SUPERVISOR},
        ("POST", "/api/v1/users"): {Role.ADMIN},
    }
    for (method, path), allowed in expected.items():
        for role in Role:
            # A body the schema rejects: allowed roles get past authorisation to 422, others stop at 403.
            status, body = await api.request(method, path, role=role, json={} if method == "POST" else None)
            if role in allowed:
                assert status in (200, 422), (method, path, role, body)
            else:
                assert status == 403, (method, path, role, body)
                assert body["error"]["code"] == "forbidden"


async def test_token_key_is_generated_once_with_mode_600(api: Api) -> None:
    path = token_key_path(api.settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_token_key(path) == load_token_key(path)
    assert len(load_token_key(path)) == 32


async def test_malformed_login_body_is_400_and_missing_field_422(api: Api) -> None:
    status, body = await api.request("POST", "/api/v1/auth/login", role=None, data='{"username": ')
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, body = await api.request("POST", "/api/v1/auth/login", role=None, json={"username": "x"})
    assert status == 422 and body["error"]["field"] == "password"


def test_token_ttl_setting_is_validated() -> None:
    assert Settings.from_env({}).api_token_ttl == 12 * 3600
    assert Settings.from_env({"CC_API_TOKEN_TTL": "600"}).api_token_ttl == 600
    for bad in ("0", "59", "abc", str(8 * 24 * 3600)):
        with pytest.raises(ConfigError, match="CC_API_TOKEN_TTL"):
            Settings.from_env({"CC_API_TOKEN_TTL": bad})
