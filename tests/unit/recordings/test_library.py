"""The recordings library for auditors: search by date range, elder, number, agent, queue, work order, SOS."""

from __future__ import annotations

import datetime as dt

from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.recordings.models import Recording
from callcenter.users.models import Role, User
from tests.apiclient import Api

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


async def _library(api: Api) -> dict[str, int]:
    """Three recorded calls: an SOS of 张老人 answered by agent-a (with its order), a hotline call of 李老人
    answered by agent-b, and an unknown caller's hotline call a day later."""
    async with api.db.transaction() as session:
        zhang, li = Elder(full_name="张老人"), Elder(full_name="李老人")
        a = User(username="agent-a", role=Role.AGENT, password_hash="x")
        b = User(username="agent-b", role=Role.AGENT, password_hash="x")
        session.add_all([zhang, li, a, b])
        await session.flush()
        calls = {
            "sos": Call(linkedid="1.1", kind=CallKind.SOS, elder_id=zhang.id, agent_id=a.id, queue="emergency",
                        caller_number="17700000101", started_at=T0, disposition=Disposition.ANSWERED),
            "hotline": Call(linkedid="2.1", kind=CallKind.HOTLINE, elder_id=li.id, agent_id=b.id, queue="hotline",
                            caller_number="17700000102", started_at=T0 + dt.timedelta(hours=1),
                            disposition=Disposition.ANSWERED),
            "unknown": Call(linkedid="3.1", kind=CallKind.HOTLINE, agent_id=b.id, queue="hotline",
                            caller_number="13900000000", started_at=T0 + dt.timedelta(days=1),
                            disposition=Disposition.ANSWERED),
        }
        session.add_all(calls.values())
        await session.flush()
        ids: dict[str, int] = {}
        for name, call in calls.items():
            recording = Recording(serial_number=f"X-{name}", call_id=call.id, storage_key=f"k/{name}.ogg",
                                  audio_format="ogg/opus", duration_seconds=10, size_bytes=100, sha256="0" * 64,
                                  created_at=call.started_at, expires_at=call.started_at + dt.timedelta(days=92))
            session.add(recording)
            await session.flush()
            ids[name] = recording.id
        ids["order"] = (await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr",
                                          call_id=calls["sos"].id, elder_id=zhang.id)).id
        ids["zhang"] = zhang.id
        return ids


async def test_every_filter_narrows_the_library(api: Api) -> None:
    ids = await _library(api)

    async def found(**params: str) -> list[int]:
        status, page = await api.request("GET", "/api/v1/recordings", role=Role.AUDITOR, params=params)
        assert status == 200, page
        return [item["id"] for item in page["items"]]

    assert await found() == [ids["unknown"], ids["hotline"], ids["sos"]]
    assert await found(sos="true") == [ids["sos"]]
    assert await found(sos="false") == [ids["unknown"], ids["hotline"]]
    assert await found(elder_id=str(ids["zhang"])) == [ids["sos"]]
    assert await found(phone="13900000000") == [ids["unknown"]]
    assert await found(agent="agent-b") == [ids["unknown"], ids["hotline"]]
    assert await found(agent="nobody") == []
    assert await found(queue="emergency") == [ids["sos"]]
    assert await found(work_order_id=str(ids["order"])) == [ids["sos"]]
    assert await found(since=(T0 + dt.timedelta(minutes=30)).isoformat(),
                       until=(T0 + dt.timedelta(hours=2)).isoformat()) == [ids["hotline"]]
    assert await found(agent="agent-b", since=(T0 + dt.timedelta(hours=12)).isoformat()) == [ids["unknown"]]

    status, page = await api.request("GET", "/api/v1/recordings", role=Role.AUDITOR, params={"sos": "true"})
    call = page["items"][0]["call"]
    assert (call["kind"], call["elder_name"], call["agent"], call["queue"], call["caller_number"]) == (
        "sos", "张老人", "agent-a", "emergency", "17700000101")
    status, body = await api.request("GET", "/api/v1/recordings", role=Role.AUDITOR, params={"phone": "12;drop"})
    assert status == 422 and body["error"]["field"] == "phone"
