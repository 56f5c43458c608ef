"""/api/v1/work-orders: orders and their event trail, read over HTTP; lists with the minimum, an order's detail
with its elder audited as a read of the elder's file."""

from __future__ import annotations

import json

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrderKind, WorkOrderStatus
from callcenter.orders.services import raise_order
from callcenter.users.models import Role
from tests.apiclient import Api


async def _seed(api: Api) -> tuple[int, int, int]:
    async with api.db.transaction() as session:
        elder = Elder(full_name="测试")
        session.add(elder)
        await session.flush()
        sos = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr", elder_id=elder.id,
                                details={"reason": "sos"})
        consult = await raise_order(session, kind=WorkOrderKind.CONSULTATION, actor_label="agent01")
        consult.status = WorkOrderStatus.CLOSED
        return elder.id, sos.id, consult.id


async def test_list_filters_and_detail_with_trail(api: Api) -> None:
    elder_id, sos, consult = await _seed(api)

    async def ids(**params: str) -> list[int]:
        status, page = await api.request("GET", "/api/v1/work-orders", role=Role.AUDITOR, params=params)
        assert status == 200, page
        return [o["id"] for o in page["items"]]

    assert await ids() == [sos, consult]  # most urgent first
    assert await ids(elder_id=str(elder_id)) == [sos]
    assert await ids(status="closed") == [consult]
    assert await ids(kind="emergency", status="open") == [sos]
    status, order = await api.request("GET", f"/api/v1/work-orders/{sos}", role=Role.AGENT)
    assert status == 200
    assert (order["kind"], order["status"], order["priority"]) == ("emergency", "open", 1)
    assert [(e["action"], e["actor_label"], e["to_status"], e["details"]) for e in order["events"]] == [
        ("created", "ivr", "open", {"reason": "sos"})]


async def test_errors(api: Api) -> None:
    status, body = await api.request("GET", "/api/v1/work-orders", params={"status": "lost"})
    assert status == 422 and body["error"]["field"] == "status"
    status, body = await api.request("GET", "/api/v1/work-orders/77")
    assert status == 404 and body["error"]["field"] == "id"
    assert (await api.request("GET", "/api/v1/work-orders", role=Role.PROVIDER))[0] == 403
    assert (await api.request("GET", "/api/v1/work-orders", role=None))[0] == 401


async def test_agent_completes_an_order_and_every_change_is_on_the_trail(api: Api) -> None:
    _, sos, _ = await _seed(api)
    status, order = await api.request("PATCH", f"/api/v1/work-orders/{sos}", role=Role.AGENT, json={
        "version": 1, "description": "老人在卫生间摔倒，意识清醒", "priority": 1, "location_text": "3 号楼 2 单元 101"})
    assert status == 200, order
    assert order["version"] == 2
    assert order["description"] == "老人在卫生间摔倒，意识清醒"
    update = order["events"][-1]
    assert update["action"] == "updated" and update["actor_label"].startswith("agent")
    assert update["details"]["changes"]["description"] == [None, "老人在卫生间摔倒，意识清醒"]
    assert "priority" not in update["details"]["changes"]  # unchanged fields are not noise on the trail


async def test_the_trail_says_the_location_changed_never_where_it_is(api: Api) -> None:
    _, sos, _ = await _seed(api)
    status, order = await api.request("PATCH", f"/api/v1/work-orders/{sos}", role=Role.AGENT, json={
        "version": 1, "latitude": 34.0351, "longitude": 113.8522})
    assert status == 200, order
    assert (order["latitude"], order["longitude"]) == (34.0351, 113.8522)
    changes = order["events"][-1]["details"]["changes"]
    assert changes == {"latitude": [None, "(sealed)"], "longitude": [None, "(sealed)"]}


async def test_a_stale_version_is_refused_and_changes_nothing(api: Api) -> None:
    _, sos, _ = await _seed(api)
    assert (await api.request("PATCH", f"/api/v1/work-orders/{sos}", role=Role.AGENT,
                              json={"version": 1, "title": "第一位坐席的修改"}))[0] == 200
    status, body = await api.request("PATCH", f"/api/v1/work-orders/{sos}", role=Role.SUPERVISOR,
                                     json={"version": 1, "title": "基于旧版本的修改"})
    assert status == 409 and body["error"]["field"] == "version"
    _, order = await api.request("GET", f"/api/v1/work-orders/{sos}", role=Role.AGENT)
    assert order["title"] == "第一位坐席的修改" and order["version"] == 2
    assert [e["action"] for e in order["events"]] == ["created", "updated"]


async def test_order_edit_errors(api: Api) -> None:
    _, sos, closed = await _seed(api)
    status, body = await api.request("PATCH", f"/api/v1/work-orders/{sos}", role=Role.AGENT,
                                     json={"version": 1, "priority": 9})
    assert status == 422 and body["error"]["field"] == "priority"
    status, body = await api.request("PATCH", f"/api/v1/work-orders/{sos}", role=Role.AGENT,
                                     json={"version": 1, "kind": None})
    assert status == 422 and body["error"]["field"] == "kind"
    status, body = await api.request("PATCH", f"/api/v1/work-orders/{closed}", role=Role.AGENT,
                                     json={"version": 1, "title": "x"})
    assert status == 409 and body["error"]["field"] == "status"
    assert (await api.request("PATCH", f"/api/v1/work-orders/{sos}", role=Role.AUDITOR,
                              json={"version": 1, "title": "x"}))[0] == 403
    assert (await api.request("PATCH", "/api/v1/work-orders/999", role=Role.AGENT,
                              json={"version": 1, "title": "x"}))[0] == 404


async def test_two_simultaneous_edits_of_one_version_one_wins_one_is_told(api: Api) -> None:
    import asyncio

    _, sos, _ = await _seed(api)
    results = await asyncio.gather(*(
        api.request("PATCH", f"/api/v1/work-orders/{sos}", role=role, json={"version": 1, "title": title})
        for role, title in ((Role.AGENT, "坐席甲"), (Role.SUPERVISOR, "班长乙"))
    ))
    assert sorted(status for status, _ in results) == [200, 409]
    _, order = await api.request("GET", f"/api/v1/work-orders/{sos}", role=Role.AGENT)
    winner = next(body for status, body in results if status == 200)
    assert order["title"] == winner["title"] and order["version"] == 2


async def test_a_call_that_does_not_exist_is_named_not_taken_for_a_concurrent_change(api: Api) -> None:
    """Found by the fuzzing (tests/unit/api/test_fuzz.py): the unknown call failed the foreign key and came back as
    an undocumented 409 "conflicts with a concurrent one; retry"."""
    status, body = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT,
                                     json={"kind": "consultation", "title": "来电", "call_id": 4242})
    assert status == 422 and body["error"]["field"] == "call_id", body
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT,
                                      json={"kind": "consultation", "title": "来电"})
    assert status == 201, order
    status, body = await api.request("POST", f"/api/v1/work-orders/{order['id']}/actions", role=Role.AGENT,
                                     json={"action": "submit", "version": order["version"], "call_id": 4242})
    assert status == 422 and body["error"]["field"] == "call_id", body


# What the elder's file and the order say of the elder: never in an audit entry, never in a list.
_ELDER = {"full_name": "王秀英", "phone": "13900139000", "address": "东城区幸福路 1 号", "community": "幸福社区"}
_PLACE = {"location_text": "3 号楼 2 单元 101", "latitude": 34.0351, "longitude": 113.8522}
_SAID = "老人在卫生间摔倒，左腿疼"


async def _order_about_an_elder(api: Api) -> tuple[int, int]:
    """An open service request about an elder, with what the elder said and where the elder is; (elder, order)."""
    async with api.db.transaction() as session:
        elder = Elder(**_ELDER)
        session.add(elder)
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="agent01",
                                  elder_id=elder.id, description=_SAID, **_PLACE)
        return elder.id, order.id


async def _order_reads(api: Api) -> list[AuditEntry]:
    async with api.db.transaction() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "elder.work_order")
                                          .order_by(AuditEntry.id)))


async def test_an_orders_detail_with_its_elder_is_an_audited_read_of_the_elders_file(api: Api) -> None:
    elder_id, order_id = await _order_about_an_elder(api)
    agent = await api.user(Role.AGENT, username="agent-reads")
    status, order = await api.request("GET", f"/api/v1/work-orders/{order_id}", token=await api.token_for(agent))
    assert status == 200 and order["elder"] == {"id": elder_id, **_ELDER}, order

    [entry] = await _order_reads(api)
    assert (entry.actor_id, entry.actor_label, entry.source_ip) == (agent.id, "agent-reads", "127.0.0.1")
    assert (entry.target_type, entry.target_id) == ("elder", str(elder_id))
    assert entry.details == {"justified_by": "order", "order_id": order_id,
                             "fields": ["address", "community", "full_name", "phone",
                                        "location_text", "latitude", "longitude"]}
    written = json.dumps(entry.details, ensure_ascii=False)
    for value in (*_ELDER.values(), *map(str, _PLACE.values()), _SAID):
        assert value not in written, value

    # An edit's answer carries the elder too: it is a read as well (an edit that changes nothing leaves no trail,
    # so without this entry it would read the file unnoticed).
    status, edited = await api.request("PATCH", f"/api/v1/work-orders/{order_id}", role=Role.SUPERVISOR,
                                       json={"version": order["version"]})
    assert status == 200 and edited["elder"]["phone"] == _ELDER["phone"]
    assert [e.details["order_id"] for e in await _order_reads(api)] == [order_id, order_id]


async def test_an_order_without_an_elder_reads_no_file(api: Api) -> None:
    _, _, consult = await _seed(api)
    status, order = await api.request("GET", f"/api/v1/work-orders/{consult}", role=Role.AUDITOR)
    assert status == 200 and order["elder"] is None
    assert await _order_reads(api) == []


async def test_a_list_carries_no_description_place_or_coordinates_and_reads_no_file(api: Api) -> None:
    await _order_about_an_elder(api)
    status, page = await api.request("GET", "/api/v1/work-orders", role=Role.AGENT)
    assert status == 200 and len(page["items"]) == 1
    assert not {"description", "location_text", "latitude", "longitude", "elder"} & set(page["items"][0])
    listed = json.dumps(page, ensure_ascii=False)
    for value in (*_ELDER.values(), _PLACE["location_text"], _SAID):
        assert value not in listed, value
    assert await _order_reads(api) == []
