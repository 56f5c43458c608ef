"""Provider-portal notices (seed 6.3): the notifier delivers a provider's notices to that provider's pages only,
cuts off a page that falls behind, and ``/provider/ws`` carries a dispatch (and the centre's receipt rejection and
cancellation) to the provider it concerns, after the step committed, never to another provider."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse

from callcenter.orders.notify import ORDER_NOTIFIER, OrderNotice, OrderNotifier
from callcenter.push import Subscriber, provider
from callcenter.supervision_cases.models import CaseReason, SupervisionCase
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.orders.test_workflow_api import RECEIPT, _act, _provider


def _notice(provider_id: int, order_id: int = 1, event: str = "dispatched") -> OrderNotice:
    return OrderNotice(provider_id=provider_id, event=event, order_id=order_id, number=f"WO-{order_id}",
                       title="助浴", status="dispatched", service="bathing")


def _page(notifier: OrderNotifier, provider_id: int) -> Subscriber:
    return notifier.pages.subscribe(f"portal{provider_id}", Role.PROVIDER, provider_id)


async def test_a_providers_notice_reaches_only_its_own_pages() -> None:
    notifier = OrderNotifier()
    first_page, second_page = _page(notifier, 1), _page(notifier, 1)
    other = _page(notifier, 2)
    assert notifier.publish(_notice(1, order_id=7)) == 2
    for page in (first_page, second_page):
        assert await page.next() == {"type": "order_notice", "event": "dispatched", "order_id": 7,
                                     "number": "WO-7", "title": "助浴", "status": "dispatched", "service": "bathing",
                                     "note": None}
    assert other.queue.empty()
    notifier.pages.unsubscribe(first_page)
    assert notifier.publish(_notice(1, order_id=8)) == 1 and first_page.queue.empty()
    assert notifier.publish(_notice(3)) == 0  # nobody listening for provider 3: nothing kept for later


async def test_a_page_that_falls_behind_is_cut_off_and_the_others_still_receive() -> None:
    notifier = OrderNotifier(queue_size=2)
    slow, quick = _page(notifier, 1), _page(notifier, 1)
    for order_id in (1, 2):
        notifier.publish(_notice(1, order_id))
    assert [(await quick.next() or {})["order_id"] for _ in range(2)] == [1, 2]
    assert notifier.publish(_notice(1, 3)) == 1  # the slow page's queue is full: it is cut off
    assert await slow.next() is None and slow.queue.empty()  # the end of its feed, nothing stale before it
    assert (await quick.next() or {})["order_id"] == 3
    assert len(notifier.pages.subscribers(provider(1))) == 1


async def _order(api: Api, provider_id: int) -> dict[str, Any]:
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "title": "助浴", "description": "每周一次助浴", "service": "bathing",
        "provider_id": provider_id})
    assert status == 201, order
    return await _act(api, order, "submit")


async def _next(socket: ClientWebSocketResponse) -> dict[str, Any]:
    message: dict[str, Any] = await socket.receive_json(timeout=5)
    return message


async def _nothing_more(socket: ClientWebSocketResponse) -> None:
    try:
        message = await socket.receive_json(timeout=0.3)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {message}")


async def test_the_portal_websocket_carries_its_own_providers_dispatch_only(api: Api) -> None:
    mine_id, staff_id, mine = await _provider(api, "幸福家政")
    other_id, _, other = await _provider(api, "远方家政")
    agent = await api.token(Role.AGENT)
    for bad, code in (("", 4401), ("forged", 4401), (agent, 4403)):
        assert await api.refused_socket("/provider/ws", bad) == code, bad

    my_socket = await api.socket("/provider/ws", mine)
    other_socket = await api.socket("/provider/ws", other)
    for socket in (my_socket, other_socket):
        assert (await _next(socket))["type"] == "hello"
    assert len(api.client.app[ORDER_NOTIFIER].pages.subscribers(provider(mine_id))) == 1

    order = await _order(api, mine_id)
    await _nothing_more(my_socket)  # intake and review are the centre's business
    order = await _act(api, order, "dispatch")
    notice = await _next(my_socket)
    assert notice == {"type": "order_notice", "event": "dispatched", "order_id": order["id"],
                      "number": order["number"], "title": "助浴", "status": "dispatched", "service": "bathing",
                      "note": None}
    await _nothing_more(other_socket)

    # The provider's own steps are not echoed back; the centre's that affect it are.
    order = await _act(api, order, "accept", token=mine)
    order = await _act(api, order, "assign", token=mine, staff_id=staff_id)
    order = await _act(api, order, "start", token=mine)
    order = await _act(api, order, "finish", token=mine, receipt=RECEIPT)
    await _nothing_more(my_socket)
    order = await _act(api, order, "reject_receipt", reason="缺少服务时长说明")
    assert (await _next(my_socket))["event"] == "receipt_rejected"
    read_before = order
    order = await _act(api, order, "cancel", reason="老人住院，服务取消")
    assert await _next(my_socket) == {
        "type": "order_notice", "event": "cancelled", "order_id": order["id"], "number": order["number"],
        "title": "助浴", "status": "cancelled", "service": "bathing", "note": None}

    # A refused step (a stale version) announces nothing; the other provider's dispatch reaches only it.
    stale = await _act(api, read_before, "cancel", reason="重复", expect=409)
    assert stale["error"]["code"] == "stale_version"
    theirs = await _act(api, await _order(api, other_id), "dispatch")
    assert (await _next(other_socket))["order_id"] == theirs["id"]
    await _nothing_more(my_socket)
    await my_socket.close()
    await other_socket.close()
    await asyncio.sleep(0.05)
    assert len(api.client.app[ORDER_NOTIFIER].pages.subscribers(provider(mine_id))) == 0


async def test_an_urging_sent_as_a_platform_message_reaches_the_providers_portal(api: Api) -> None:
    provider_id, _, portal = await _provider(api, "督办家政")
    order = await _act(api, await _order(api, provider_id), "dispatch")
    async with api.db.transaction() as session:
        case = SupervisionCase(number="DB-TEST-1", reason=CaseReason.OVERDUE,
                               trigger_key=f"overdue:order:{order['id']}",
                               work_order_id=order["id"], provider_id=provider_id, summary="逾期未服务")
        session.add(case)
        await session.flush()
        case_id = case.id
    socket = await api.socket("/provider/ws", portal)
    assert (await _next(socket))["type"] == "hello"
    path = f"/api/v1/supervision-cases/{case_id}/urgings"
    status, _ = await api.request("POST", path, role=Role.SUPERVISOR,
                                  json={"method": "call", "result": "电话催办，承诺今日上门"})
    assert status == 201
    await _nothing_more(socket)  # a phone call is not a platform message
    status, _ = await api.request("POST", path, role=Role.SUPERVISOR, json={
        "method": "message", "message": "请今日 18 点前上门服务并回传回执", "result": "已发送平台消息"})
    assert status == 201
    notice = await _next(socket)
    assert (notice["event"], notice["order_id"], notice["note"]) == (
        "urged", order["id"], "请今日 18 点前上门服务并回传回执")
    await socket.close()
