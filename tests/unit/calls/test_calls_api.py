"""/api/v1/calls: the call log read over HTTP, with time filters that insist on an offset."""

from __future__ import annotations

import datetime as dt

from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.elders.models import Elder
from callcenter.users.models import Role
from tests.apiclient import Api

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


async def _seed(api: Api) -> tuple[int, list[int]]:
    async with api.db.transaction() as session:
        elder = Elder(full_name="测试")
        session.add(elder)
        await session.flush()
        calls = [
            Call(linkedid="1.1", kind=CallKind.SOS, elder_id=elder.id, caller_number="17700000501",
                 started_at=T0, disposition=Disposition.ANSWERED,
                 legs=[CallLeg(uniqueid="1.1", channel="PJSIP/dev-1-0001", started_at=T0),
                       CallLeg(uniqueid="1.2", channel="PJSIP/8001-0002", started_at=T0 + dt.timedelta(seconds=5))]),
            Call(linkedid="2.1", kind=CallKind.HOTLINE, elder_id=elder.id, started_at=T0 + dt.timedelta(hours=1)),
            Call(linkedid="3.1", kind=CallKind.SOS, started_at=T0 + dt.timedelta(days=1)),
        ]
        session.add_all(calls)
        await session.flush()
        return elder.id, [c.id for c in calls]


async def test_list_filters_and_detail_with_legs(api: Api) -> None:
    elder_id, (sos, hotline, other) = await _seed(api)

    async def ids(**params: str) -> list[int]:
        status, page = await api.request("GET", "/api/v1/calls", role=Role.AUDITOR, params=params)
        assert status == 200, page
        return [c["id"] for c in page["items"]]

    assert await ids() == [other, hotline, sos]  # newest first
    assert await ids(elder_id=str(elder_id)) == [hotline, sos]
    assert await ids(kind="sos") == [other, sos]
    assert await ids(since="2026-03-01T16:30:00+08:00") == [other, hotline]  # 08:30 UTC
    assert await ids(since="2026-03-01T08:00:00Z", until="2026-03-01T09:00:00Z") == [sos]
    status, call = await api.request("GET", f"/api/v1/calls/{sos}", role=Role.AGENT)
    assert status == 200
    assert call["disposition"] == "answered" and call["started_at"] == "2026-03-01T08:00:00Z"
    assert [leg["channel"] for leg in call["legs"]] == ["PJSIP/dev-1-0001", "PJSIP/8001-0002"]


async def test_bad_filters_are_422_and_unknown_call_404(api: Api) -> None:
    for params, field in [({"since": "2026-03-01T08:00:00"}, "since"), ({"until": "yesterday"}, "until"),
                          ({"kind": "fax"}, "kind"), ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
                          ({"offset": "-1"}, "offset"), ({"elder": "1"}, "elder"),
                          ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, None)]:
        status, body = await api.request("GET", "/api/v1/calls", params=params)
        assert status == 422, params
        assert body["error"]["field"] == field, body
    status, body = await api.request("GET", "/api/v1/calls", params={"since": "2026-03-01T08:00:00"})
    assert "timezone" in body["error"]["message"]
    status, body = await api.request("GET", "/api/v1/calls/4040")
    assert status == 404 and body["error"]["code"] == "not_found"
    response = await api.client.get("/api/v1/calls?kind=sos&kind=hotline",
                                    headers={"Authorization": f"Bearer {await api.token(Role.ADMIN)}"})
    assert response.status == 422
    assert (await api.request("GET", "/api/v1/calls", role=Role.PROVIDER))[0] == 403
