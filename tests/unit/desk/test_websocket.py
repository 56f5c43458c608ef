"""GET /ws over a real aiohttp server: token checked like the API's, hello first, pushes delivered."""

from __future__ import annotations

from pathlib import Path

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from callcenter import push
from callcenter.api.context import TOKENS
from callcenter.db.session import Database
from callcenter.desk.http import HUB
from callcenter.providers.models import ServiceProvider
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password
from tests.apiclient import api_settings, assembled, session_token


async def test_websocket_needs_a_valid_token_then_says_hello_and_pushes(db: Database, tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    assembly = assembled(db, settings)
    app, tokens, hub = assembly.web, assembly.web[TOKENS], assembly.web[HUB]
    async with db.transaction() as session:
        user = User(username="agent01", password_hash=hash_password("agent-pass-1"), role=Role.AGENT)
        session.add(user)
        await session.flush()
        provider = ServiceProvider(name="示范家政", services=["cleaning"], communities=[])
        session.add(provider)
        await session.flush()
        portal = User(username="provider01", password_hash=hash_password("provider-pass-1"), role=Role.PROVIDER,
                      provider_id=provider.id)
        session.add(portal)
        await session.flush()
    token = await session_token(db, tokens, user.id)
    portal_token = await session_token(db, tokens, portal.id)
    async with TestClient(TestServer(app)) as client:
        # Providers use /provider/ws; a token in the URL is not read at all.
        for first, code in (({"type": "auth", "token": ""}, 4401), ({"type": "auth", "token": "not-a-token"}, 4401),
                             ({"type": "hello"}, 4401), ({"type": "auth", "token": portal_token}, 4403)):
            refused = await client.ws_connect(f"/ws?token={token}")
            await refused.send_json(first)
            error = await refused.receive_json(timeout=5)
            assert error["type"] == "error" and error["code"] == code, error
            assert (await refused.receive(timeout=5)).type is WSMsgType.CLOSE
            assert refused.close_code == code
        socket = await client.ws_connect("/ws")
        await socket.send_json({"type": "auth", "token": token})
        assert (await socket.receive_json(timeout=5)) == {"type": "hello", "username": "agent01", "role": "agent"}
        assert hub.publish(push.user("agent01"), {"type": "screen_pop", "call_id": 7}) == 1
        assert (await socket.receive_json(timeout=5))["call_id"] == 7
        await socket.close()
