"""A small centre with one row of everything the REST API names in its paths, for the tests that walk every route
(the route × role matrix, the provider scoping, the fuzzing): an elder with a contact, a device, a call answered by
the agent with its recording on disk, two providers (A and B) each with a staff member, a portal account, a signing
key and an order dispatched to it, a volunteer team and volunteer, a supervision case, a finished roster import,
an alarm (entered by hand, with its work order), a geofence of the elder's and a gateway's ingest key for the device.

Rows are made through the API where it makes them (so they are what the API would make), and in the database
where only telephony or a background job would (calls, recordings, imports, supervision cases).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import re
from pathlib import Path
from typing import Any

from sqlalchemy import update

from callcenter.calls.models import Call, Disposition
from callcenter.db.base import utcnow
from callcenter.elders.models import RosterImport, RosterImportStatus
from callcenter.orders.models import WorkOrderKind
from callcenter.recordings.models import Recording
from callcenter.recordings.storage import LocalRecordingStore
from callcenter.supervision_cases.services import scan
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password
from tests.apiclient import PASSWORD, Api
from tests.unit.supervision_cases import factory
from tests.unit.volunteers.test_volunteers_api import VOLUNTEER

AUDIO = bytes(range(256)) * 8  # 2 KiB standing in for an Ogg file
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
_PARAM = re.compile(r"\{(\w+)\}")


@dataclasses.dataclass(frozen=True, slots=True)
class Tenant:
    """A provider and what is its own: the rows a portal account of another provider must never reach."""

    name: str  # unique in the world: found in an answer, it names this provider
    provider_id: int
    staff_id: int
    account: User  # its portal account (role provider)
    order_id: int  # an order dispatched to it
    order_number: str
    order_version: int
    key_id: str  # a signing key of its own system
    session_id: str  # a live log-in session of its portal account

    def path_values(self) -> dict[tuple[str, str], str]:
        return {("providers", "id"): str(self.provider_id), ("staff", "staff_id"): str(self.staff_id),
                ("work-orders", "id"): str(self.order_id), ("api-keys", "key"): self.key_id,
                ("users", "username"): self.account.username, ("sessions", "session"): self.session_id}


@dataclasses.dataclass(frozen=True, slots=True)
class World:
    agent: User  # the agent who answered the call (and so may hear its recording)
    elder_id: int
    device_id: int
    call_id: int
    recording_id: int
    team_id: int
    volunteer_id: int
    case_id: int
    import_id: int
    alarm_id: int
    geofence_id: int
    ingest_key_id: str  # a gateway's signing key, for the world's device
    a: Tenant
    b: Tenant

    def path_values(self) -> dict[tuple[str, str], str]:
        """What each path parameter names, by (the path segment before it, its name)."""
        return {
            ("elders", "id"): str(self.elder_id), ("imports", "id"): str(self.import_id),
            ("devices", "id"): str(self.device_id), ("calls", "id"): str(self.call_id),
            ("calls", "call_id"): str(self.call_id), ("recordings", "id"): str(self.recording_id),
            ("volunteer-teams", "id"): str(self.team_id), ("volunteers", "id"): str(self.volunteer_id),
            ("pairings", "elder_id"): str(self.elder_id), ("supervision-cases", "id"): str(self.case_id),
            ("alarms", "id"): str(self.alarm_id), ("geofences", "fence_id"): str(self.geofence_id),
            ("ingest-keys", "key"): self.ingest_key_id,
            **self.a.path_values(),
        }

    async def actors(self, api: Api, tag: str) -> dict[Role, User]:
        """A new account in every role (the provider one A's), for one route's requests: whatever a route does
        to an account (logs it out, disables it) stays with that route."""
        users = {role: User(username=f"{role.value}-{tag}", role=role, password_hash=_password_hash(),
                            provider_id=self.a.provider_id if role is Role.PROVIDER else None) for role in Role}
        async with api.db.transaction() as session:
            session.add_all(users.values())
            await session.flush()
            # The agent answered the call: its conference and recording are the agent's to run and hear.
            await session.execute(update(Call).where(Call.id == self.call_id).values(agent_id=users[Role.AGENT].id))
        return users


@functools.cache
def _password_hash() -> str:
    """``PASSWORD``'s hash, made once: the world's accounts log in with it, and hashing is slow on purpose."""
    return hash_password(PASSWORD)


UNKNOWN_NUMBER = "987654"  # a row no test makes
UNKNOWN_NAME = "no-such-row"


def fill_path(path: str, values: dict[tuple[str, str], str],
              by_name: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """``path`` with each parameter replaced by the row ``values`` names for it (by the segment before it and its
    name), else ``by_name`` names for it (by its name alone); the parameters nothing was named for get a value no
    row has (their answers may then be 404) and are returned."""
    unknown: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        match = _PARAM.fullmatch(segment)
        if match is None:
            continue
        name = match[1]
        value = values.get((segments[index - 1], name)) or (by_name or {}).get(name)
        if value is None:
            unknown.append(f"{segments[index - 1]}/{{{name}}}")
            value = UNKNOWN_NUMBER if name == "id" or name.endswith("_id") else UNKNOWN_NAME
        segments[index] = value
    return "/".join(segments), unknown


async def _account(api: Api, username: str, role: Role, provider_id: int | None = None) -> User:
    async with api.db.transaction() as session:
        user = User(username=username, role=role, password_hash=_password_hash(), provider_id=provider_id)
        session.add(user)
    return user


@dataclasses.dataclass(frozen=True, slots=True)
class _Builder:
    api: Api
    staff: dict[Role, User]  # who makes the rows, in each centre role

    async def ok(self, method: str, path: str, *, role: Role = Role.SUPERVISOR, **kwargs: Any) -> Any:
        token = await self.api.token_for(self.staff[role])
        status, body = await self.api.request(method, path, token=token, **kwargs)
        assert status in (200, 201), (method, path, status, body)
        return body

    async def tenant(self, name: str, username: str, elder_id: int) -> Tenant:
        provider = await self.ok("POST", "/api/v1/providers", json={
            "name": name, "phone": "0374-5551234", "services": ["bathing"]})
        staff = await self.ok("POST", f"/api/v1/providers/{provider['id']}/staff", json={
            "name": f"{name}护理员", "phone": "13800138000"})
        account = await _account(self.api, username, Role.PROVIDER, provider["id"])
        order = await self.ok("POST", "/api/v1/work-orders", role=Role.AGENT, json={
            "kind": "service_request", "elder_id": elder_id, "description": "每周一次助浴", "service": "bathing",
            "provider_id": provider["id"]})
        for action in ("submit", "dispatch"):
            order = await self.ok("POST", f"/api/v1/work-orders/{order['id']}/actions",
                                  json={"action": action, "version": order["version"]})
        key = await self.ok("POST", f"/api/v1/providers/{provider['id']}/api-keys")
        session = self.api.tokens.verify(await self.api.token_for(account), utcnow()).session_id
        return Tenant(name, provider["id"], staff["id"], account, order["id"], order["number"], order["version"],
                      key["key_id"], session)


async def build(api: Api, tmp_path: Path) -> World:
    builder = _Builder(api, {role: await _account(api, f"{role.value}-builder", role)
                             for role in (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)})
    agent = await _account(api, "agent-on-the-call", Role.AGENT)
    elder = await builder.ok("POST", "/api/v1/elders", json={
        "full_name": "王秀英", "phone": "13900139000", "address": "东城区幸福路 1 号", "community": "幸福社区",
        "contacts": [{"role": "relative", "name": "李建国", "phone": "13900139001", "relationship": "儿子"}]})
    device = await builder.ok("POST", "/api/v1/devices", role=Role.ADMIN, json={
        "elder_id": elder["id"], "kind": "pendant", "sip_username": "matrix-1001",
        "sip_password": "a-long-device-password-1"})
    a = await builder.tenant("甲家政", "portal-jia", elder["id"])
    b = await builder.tenant("乙家政", "portal-yi", elder["id"])
    alarm = await builder.ok("POST", "/api/v1/alarms", role=Role.AGENT, json={
        "type": "fall", "elder_id": elder["id"], "device_id": device["id"], "note": "邻居来电：老人在楼道摔倒"})
    fence = await builder.ok("POST", f"/api/v1/elders/{elder['id']}/geofences", role=Role.AGENT, json={
        "name": "家附近", "area": {"type": "circle", "center": {"lat": 39.9139, "lon": 116.3636}, "radius_m": 500},
        "allowed_hours": {"start": "07:00", "end": "20:00"}})
    ingest_key = await builder.ok("POST", "/api/v1/ingest-keys", role=Role.ADMIN, json={
        "name": "幸福社区楼宇网关", "device_ids": [device["id"]]})
    team = await builder.ok("POST", "/api/v1/volunteer-teams", json={"name": "和平社区志愿服务队"})
    volunteer = await builder.ok("POST", "/api/v1/volunteers", json={**VOLUNTEER, "team_id": team["id"]})
    source = tmp_path / "world-audio.ogg"
    source.write_bytes(AUDIO)
    serial = "SOS-20260301080000-11"
    stored = await LocalRecordingStore(api.settings.recordings_dir).put(f"2026/03/01/{serial}.ogg", source)
    async with api.db.transaction() as session:
        call = Call(linkedid="1772352000.1", agent_id=agent.id, elder_id=elder["id"], started_at=T0,
                    disposition=Disposition.ANSWERED)
        session.add(call)
        await session.flush()
        recording = Recording(serial_number=serial, call_id=call.id, storage_key=f"2026/03/01/{serial}.ogg",
                              audio_format="ogg/opus", duration_seconds=12.5, size_bytes=stored.size_bytes,
                              sha256=stored.sha256, created_at=T0, expires_at=T0 + dt.timedelta(days=92))
        roster = RosterImport(filename="roster.csv", sha256=hashlib.sha256(b"").hexdigest(),
                              status=RosterImportStatus.DONE, rejected_rows=[], finished_at=T0)
        late = await factory.order(session, WorkOrderKind.CONSULTATION, T0, elder_id=elder["id"])
        session.add_all([recording, roster])
        await session.flush()
        [case] = [c for c in await scan(session, T0 + dt.timedelta(hours=49)) if c.work_order_id == late.id]
        ids = call.id, recording.id, roster.id, case.id
    return World(agent=agent, elder_id=elder["id"], device_id=device["id"], call_id=ids[0],
                 recording_id=ids[1], team_id=team["id"], volunteer_id=volunteer["id"], case_id=ids[3],
                 import_id=ids[2], alarm_id=alarm["id"], geofence_id=fence["id"], ingest_key_id=ingest_key["key_id"],
                 a=a, b=b)
