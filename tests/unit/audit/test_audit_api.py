"""/api/v1/audit: admins and auditors search the trail by action (or prefix), actor, target and time."""

from __future__ import annotations

import datetime as dt

from callcenter.audit.services import Actor, record
from callcenter.db.base import utcnow
from callcenter.users.models import Role
from tests.apiclient import Api


async def test_filters_and_roles(api: Api) -> None:
    now = utcnow()
    async with api.db.transaction() as session:
        for action, target, at in (("spy.start", "7", now - dt.timedelta(minutes=5)), ("spy.end", "7", now),
                                   ("recording.replay", "3", now), ("spy_other", "7", now)):
            record(session, Actor(None, "sup-1"), action=action, target_type="call", target_id=target).at = at

    async def actions(role: Role = Role.AUDITOR, **params: str) -> list[str]:
        status, page = await api.request("GET", "/api/v1/audit", role=role, params=params)
        assert status == 200, page
        return [e["action"] for e in page["items"]]

    assert await actions(action="spy.") == ["spy.start", "spy.end"]  # a prefix ends in '.'; oldest first
    assert await actions(action="spy.end") == ["spy.end"]
    assert await actions(target_type="call", target_id="3") == ["recording.replay"]
    assert await actions(action="spy.", since=(now - dt.timedelta(minutes=1)).isoformat()) == ["spy.end"]
    assert await actions(actor="nobody") == []
    assert "spy.start" in await actions(Role.ADMIN)
    for role in (Role.AGENT, Role.SUPERVISOR, Role.PROVIDER):
        assert (await api.request("GET", "/api/v1/audit", role=role))[0] == 403
    status, body = await api.request("GET", "/api/v1/audit", params={"since": "2026-01-01T00:00:00"})
    assert status == 422 and body["error"]["field"] == "since"  # naive times are refused
