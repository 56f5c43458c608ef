"""The client's address behind a trusted reverse proxy: X-Forwarded-For is believed only from CC_TRUSTED_PROXIES,
and then the log-in limits and the audit see the client, not the proxy."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.config import ConfigError, Settings
from callcenter.db.session import Database
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password
from callcenter.web.forwarded import client_address
from tests.apiclient import PASSWORD, api_settings, assembled

PROXIES = Settings.from_env({"CC_TRUSTED_PROXIES": "127.0.0.1, 172.30.0.0/24"}).trusted_proxies


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("127.0.0.1", "203.0.113.9", "203.0.113.9"),                 # through the proxy
    ("127.0.0.1", "198.51.100.7, 203.0.113.9", "203.0.113.9"),   # the client wrote the left part: ignored
    ("127.0.0.1", "203.0.113.9, 172.30.0.5", "203.0.113.9"),     # two proxies of ours
    ("127.0.0.1", "[2001:db8::1]:4711", "2001:db8::1"),
    ("127.0.0.1", "not-an-address", "127.0.0.1"),                 # a malformed chain proves nothing
    ("127.0.0.1", None, "127.0.0.1"),
    ("192.0.2.50", "203.0.113.9", "192.0.2.50"),                 # not our proxy: its header is ignored
])
def test_the_client_is_the_rightmost_address_not_our_proxy(peer: str, header: str | None, client: str) -> None:
    assert client_address(peer, header, PROXIES) == client


def test_nobody_is_trusted_by_default_and_bad_networks_are_refused() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    assert client_address("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"
    with pytest.raises(ConfigError, match="CC_TRUSTED_PROXIES"):
        Settings.from_env({"CC_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"})


async def test_behind_the_proxy_lock_outs_and_the_audit_are_per_client(db: Database, tmp_path: Path) -> None:
    settings = api_settings(tmp_path, CC_TRUSTED_PROXIES="127.0.0.1")
    async with db.transaction() as session:
        session.add(User(username="agent-fwd", password_hash=hash_password(PASSWORD), role=Role.AGENT))
    async with TestClient(TestServer(assembled(db, settings).web)) as client:
        async def login(password: str, address: str) -> int:
            response = await client.post("/api/v1/auth/login", json={"username": "agent-fwd", "password": password},
                                         headers={"X-Forwarded-For": address})
            return response.status

        for _ in range(5):
            assert await login("wrong-password-x", "203.0.113.66") == 401
        assert await login(PASSWORD, "203.0.113.66") == 423  # locked for the guesser's address
        assert await login(PASSWORD, "198.51.100.20") == 200  # the real user, through the same proxy
    async with db.transaction() as session:
        addresses = (await session.scalars(select(AuditEntry.source_ip).where(
            AuditEntry.action.like("auth.login%")))).all()
    assert set(addresses) == {"203.0.113.66", "198.51.100.20"}
