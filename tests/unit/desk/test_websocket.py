"""GET /ws over a real aiohttp server: token checked like the API's, hello first, pushes delivered."""

from __future__ import annotations

from pathlib import Path

from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from callcenter import push
from callcenter.api.context import TOKENS
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.desk.http import HUB
from callcenter.providers.models import ServiceProvider
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password
from tests.apiclient import api_settings, assembled


async def test_websocket_needs_a_valid_token_then_says_hello_and_pushes(db: Database, tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    assembly = assembled(db, settings)
    app, tokens, hub = assembly.web, assembly.web[TOKENS], assembly.web[HUB]
    async with db.transaction() as session:
        user = User(username="agent01", password_hash=hash_password("agent-pass-1"), role=Role.AGENT)
        session.add(user)
        await session.flush()
        token, _ = tokens.issue(user.id, Role.AGENT, utcnow())
        provider = ServiceProvider(name="示范家政", services=["cleaning"], communities=[])
        session.add(provider)
        await session.flush()
        portal = User(username="provider01", password_hash=hash_password("provider-pass-1"), role=Role.PROVIDER,
                      provider_id=provider.id)
        session.add(portal)
        await session.flush()
        portal_token, _ = tokens.issue(portal.id, Role.PROVIDER, utcnow())
    async with TestClient(TestServer(app)) as client:
        for bad, status in (("", 401), ("not-a-token", 401), (portal_token, 403)):  # providers: /provider/ws
            try:
                await client.ws_connect(f"/ws?token={bad}")
                raise AssertionError("connected without a valid token")
            except WSServerHandshakeError as error:
                assert error.status == status
        socket = await client.ws_connect(f"/ws?token={token}")
        assert (await socket.receive_json(timeout=5)) == {"type": "hello", "username": "agent01", "role": "agent"}
        assert hub.publish(push.user("agent01"), {"type": "screen_pop", "call_id": 7}) == 1
        assert (await socket.receive_json(timeout=5))["call_id"] == 7
        await socket.close()
