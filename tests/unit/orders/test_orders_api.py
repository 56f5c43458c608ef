"""/api/v1/work-orders: orders and their event trail, read over HTTP."""

from __future__ import annotations

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
