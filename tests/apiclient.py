"""The real web application with the REST API against a real database, for API unit tests.

It is the platform's own assembly (``platform.assemble``: every plugin loaded and wired) with an AMI client that was
never started, and nothing started: the provisioner renders (into a private root under tmp_path) and its reload
finds AMI not connected, the production "pending" path; telephony actions answer as they do while AMI is down.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.api.context import TOKENS
from callcenter.api.tokens import TokenService
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.platform import Assembly, assemble
from callcenter.recordings.backends import RECORDINGS, RecordingStores
from callcenter.recordings.storage import LocalRecordingStore
from callcenter.telephony.ami import AmiClient
from callcenter.users.models import Role, SessionKind, User
from callcenter.users.passwords import hash_password
from callcenter.users.sessions import open_session
from tests.harness import free_tcp_port

PASSWORD = "correct-horse-battery"


@dataclasses.dataclass
class Api:
    client: TestClient
    db: Database
    settings: Settings
    tokens: TokenService
    _users: dict[Role, str] = dataclasses.field(default_factory=dict)

    async def user(self, role: Role, *, username: str | None = None, active: bool = True,
                   provider_id: int | None = None) -> User:
        async with self.db.transaction() as session:
            user = User(username=username or f"{role.value}-{secrets.token_hex(3)}", role=role, active=active,
                        password_hash=hash_password(PASSWORD), provider_id=provider_id)
            session.add(user)
            await session.flush()
            return user

    async def token(self, role: Role) -> str:
        """A valid token for a (cached) user of ``role``."""
        if role not in self._users:
            user = await self.user(role)
            self._users[role] = await session_token(self.db, self.tokens, user.id)
        return self._users[role]

    async def token_for(self, user: User) -> str:
        """A valid token, of a new log-in session, for ``user`` (e.g. a provider-portal account of one provider)."""
        return await session_token(self.db, self.tokens, user.id)

    async def socket(self, path: str, token: str) -> ClientWebSocketResponse:
        """A WebSocket (``/ws``, ``/provider/ws``) authenticated as a page does: the token as its first message."""
        socket = await self.client.ws_connect(path)
        await socket.send_json({"type": "auth", "token": token})
        return socket

    async def refused_socket(self, path: str, token: str) -> int:
        """The close code of a socket whose first message carried ``token`` and that must be refused (4401/4403)."""
        socket = await self.socket(path, token)
        error = await socket.receive_json(timeout=5)
        assert error["type"] == "error", error
        assert (await socket.receive(timeout=5)).type is WSMsgType.CLOSE
        assert socket.close_code == error["code"], (socket.close_code, error)
        return int(error["code"])

    async def request(self, method: str, path: str, *, role: Role | None = Role.ADMIN, token: str | None = None,
                      json: Any = None, data: str | bytes | None = None,
                      params: dict[str, str] | None = None) -> tuple[int, Any]:
        headers = {}
        if token is None and role is not None:
            token = await self.token(role)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": headers, "params": params}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
            headers["Content-Type"] = "application/json"
        response = await self.client.request(method, path, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body

    async def count(self, model: type) -> int:
        async with self.db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def session_token(db: Database, tokens: TokenService, user_id: int, *,
                        kind: SessionKind = SessionKind.API) -> str:
    """A bearer token of a new log-in session of ``user_id``, as a log-in would open (users.sessions)."""
    async with db.transaction() as session:
        user = await session.get(User, user_id)
        assert user is not None, user_id
        token, _ = await open_session(session, user, kind, tokens, source_ip="127.0.0.1", user_agent="tests",
                                      now=utcnow())
        return token


def api_settings(tmp_path: Path, **environment: str) -> Settings:
    """Settings for an in-process API under ``tmp_path``; ``environment`` adds CC_* variables. MQTT is off unless
    ``environment`` says otherwise: whether this machine has mosquitto must not change what the API answers."""
    root = tmp_path / "asterisk-root"
    # A private root with a modules dir: rendering works without the real Asterisk runtime.
    (root / "usr/lib/asterisk/modules").mkdir(parents=True)
    return Settings.from_env({"CC_DATA_DIR": str(tmp_path / "data"), "CC_ASTERISK_ROOT": str(root),
                              "CC_ASTERISK_INSTANCE": f"unit-{secrets.token_hex(3)}",
                              "CC_RECORDINGS_DIR": str(tmp_path / "recordings"), "CC_MQTT_URL": "off",
                              **environment})


@pytest.fixture
def api_recording_stores(tmp_path: Path) -> RecordingStores:
    """Where the API finds recordings' audio: the local store (``CC_RECORDINGS_DIR``); a test module may override
    this fixture (the S3 store)."""
    return RecordingStores(LocalRecordingStore(tmp_path / "recordings"))


@pytest.fixture
async def api(db: Database, tmp_path: Path, api_recording_stores: RecordingStores) -> AsyncIterator[Api]:
    settings = api_settings(tmp_path)
    assembly = assembled(db, settings, replacements={RECORDINGS: api_recording_stores})
    async with TestClient(TestServer(assembly.web)) as client:
        yield Api(client, db, settings, assembly.web[TOKENS])


def assembled(db: Database, settings: Settings, **kwargs: Any) -> Assembly:
    """The platform's plugins loaded and wired against ``db``, with an AMI client that never starts (AMI "down");
    ``kwargs`` go to ``platform.assemble`` (``replacements``)."""
    return assemble(settings, db=db, ami=AmiClient("127.0.0.1", free_tcp_port(), "u", "s"), **kwargs)
