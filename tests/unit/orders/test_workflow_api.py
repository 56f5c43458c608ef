"""The work order's life through the REST API (seed 6): intake, review, dispatch, the provider's steps through its
portal account, receipt review, the follow-up call and closing; re-matching on decline; the state machine's 409s;
consultations and complaints."""

from __future__ import annotations

import datetime as dt
from typing import Any

from callcenter.providers.models import ProviderStaff, ServiceProvider
from callcenter.users.models import Role
from tests.apiclient import Api

RECEIPT = {"summary": "上门助浴 40 分钟，协助更衣", "result": "completed", "duration_minutes": 45, "satisfaction": 5}


async def _provider(api: Api, name: str, *, communities: list[str] | None = None,
                    services: list[str] | None = None) -> tuple[int, int, str]:
    """A provider offering bathing, one staff member and a portal account: (provider id, staff id, token)."""
    async with api.db.transaction() as session:
        provider = ServiceProvider(name=name, phone="0374-5551234", services=services or ["bathing"],
                                   communities=communities or [], active=True)
        session.add(provider)
        await session.flush()
        staff = ProviderStaff(provider_id=provider.id, name=f"{name}护理员", phone="13800138000")
        session.add(staff)
        await session.flush()
        provider_id, staff_id = provider.id, staff.id
    user = await api.user(Role.PROVIDER, provider_id=provider_id)
    return provider_id, staff_id, await api.token_for(user)


async def _elder(api: Api, **fields: Any) -> int:
    status, elder = await api.request("POST", "/api/v1/elders", json={
        "full_name": "王秀英", "phone": "13900139000", "address": "东城区幸福路 1 号", "community": "幸福社区",
        **fields})
    assert status == 201, elder
    return elder["id"]


async def _act(api: Api, order: dict[str, Any], action: str, *, token: str | None = None,
               role: Role | None = Role.SUPERVISOR, expect: int = 200, **fields: Any) -> dict[str, Any]:
    status, body = await api.request("POST", f"/api/v1/work-orders/{order['id']}/actions", token=token,
                                     role=None if token else role,
                                     json={"action": action, "version": order["version"], **fields})
    assert status == expect, body
    return body


async def test_full_lifecycle_through_the_api_and_the_provider_portal(api: Api) -> None:
    elder_id = await _elder(api)
    provider_id, staff_id, portal = await _provider(api, "幸福家政", communities=["幸福社区"])
    other_id, _, other_portal = await _provider(api, "远方家政")

    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "elder_id": elder_id, "title": "助浴", "description": "每周一次助浴",
        "service": "bathing"})
    assert status == 201, order
    assert order["status"] == "open" and order["due_at"] is not None
    assert set(order["allowed_actions"]) == {"submit", "cancel"}

    # The provider's portal does not see it before dispatch; nobody may skip the review.
    status, _ = await api.request("GET", f"/api/v1/work-orders/{order['id']}", token=portal, role=None)
    assert status == 404
    refused = await _act(api, order, "dispatch", expect=409)
    assert refused["error"]["code"] == "illegal_transition"

    order = await _act(api, order, "submit", role=Role.AGENT)
    returned = await _act(api, order, "return", reason="描述不完整：请注明助浴时间")
    assert returned["status"] == "open"
    order = await _act(api, returned, "submit", role=Role.AGENT)
    order = await _act(api, order, "dispatch")  # no provider chosen: the best match
    assert (order["status"], order["provider_id"]) == ("dispatched", provider_id)
    assert order["events"][-1]["details"]["matched"] == "serves_community"

    # Provider portal: sees only its own orders, takes only its own steps.
    status, mine = await api.request("GET", "/api/v1/work-orders", token=portal, role=None)
    assert status == 200 and [o["id"] for o in mine["items"]] == [order["id"]]
    status, theirs = await api.request("GET", "/api/v1/work-orders", token=other_portal, role=None)
    assert status == 200 and theirs["items"] == []
    await _act(api, order, "accept", token=other_portal, expect=404)
    seen = await _act(api, order, "approve_receipt", token=portal, expect=409)
    assert seen["error"]["code"] == "illegal_transition"
    order = await _act(api, order, "accept", token=portal)
    assert set(order["allowed_actions"]) == {"assign", "start"}
    unassigned = await _act(api, order, "start", token=portal, expect=422)
    assert unassigned["error"]["field"] == "staff_id"
    order = await _act(api, order, "assign", token=portal, staff_id=staff_id)
    arrived = dt.datetime.now(dt.UTC).isoformat()
    order = await _act(api, order, "start", token=portal, at=arrived, latitude=34.03, longitude=113.85)
    assert order["status"] == "in_service" and order["staff_id"] == staff_id
    assert order["elder"]["full_name"] == "王秀英"  # the staff member needs to reach the elder
    order = await _act(api, order, "finish", token=portal, receipt=RECEIPT)
    assert order["status"] == "service_done" and order["satisfaction"] == 5

    # The centre reviews the receipt (an incomplete one goes back), then calls the elder back.
    order = await _act(api, order, "reject_receipt", reason="缺少服务时长说明")
    assert order["status"] == "in_service"
    order = await _act(api, order, "finish", token=portal, receipt=RECEIPT)
    order = await _act(api, order, "approve_receipt")
    status, queue = await api.request("GET", "/api/v1/follow-ups", role=Role.AGENT)
    assert status == 200 and [i["order"]["id"] for i in queue["items"]] == [order["id"]]
    assert queue["items"][0]["elder"]["phone"] == "13900139000"
    # Whom to call back, no more of the file (the address is in the order's audited detail).
    assert set(queue["items"][0]["elder"]) == {"id", "full_name", "phone"}
    assert "description" not in queue["items"][0]["order"]
    closing = await _act(api, order, "close", role=Role.AGENT, expect=422)  # no follow-up recorded yet
    assert closing["error"]["field"] == "follow_up"
    order = await _act(api, order, "record_follow_up", role=Role.AGENT,
                       follow_up={"satisfaction": 4, "comments": "满意，希望下周同一时间", "solved": True})
    order = await _act(api, order, "close", role=Role.AGENT)
    assert order["status"] == "closed" and order["satisfaction"] == 4 and order["closed_at"]
    assert order["allowed_actions"] == []
    await _act(api, order, "cancel", reason="x", expect=409)
    status, provider = await api.request("GET", f"/api/v1/providers/{provider_id}")
    assert status == 200 and provider["rating"] == 4.0  # the closed order's satisfaction rates the provider

    trail = [(e["action"], e["from_status"], e["to_status"], e["actor_label"] != "") for e in order["events"]]
    assert [t[0] for t in trail] == [
        "created", "submit", "return", "submit", "dispatch", "accept", "assign", "start", "finish",
        "reject_receipt", "finish", "approve_receipt", "record_follow_up", "close"]
    assert all(t[3] for t in trail)
    status, _ = await api.request("GET", f"/api/v1/work-orders/{order['id']}", token=other_portal, role=None)
    assert status == 404
    assert other_id != provider_id


async def test_a_declined_order_is_rematched_never_to_a_decliner(api: Api) -> None:
    elder_id = await _elder(api)
    first_id, _, first = await _provider(api, "甲家政", communities=["幸福社区"])
    second_id, _, second = await _provider(api, "乙家政")
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "elder_id": elder_id, "description": "助浴", "service": "bathing"})
    order = await _act(api, order, "submit")
    order = await _act(api, order, "dispatch")
    assert order["provider_id"] == first_id
    await _act(api, order, "decline", token=first, expect=422)  # a reason is required
    answer = await _act(api, order, "decline", token=first, reason="本周人手不足")
    assert (answer["status"], answer["provider_id"], answer["events"]) == ("under_review", None, [])
    status, order = await api.request("GET", f"/api/v1/work-orders/{order['id']}")
    assert (order["status"], order["provider_id"]) == ("under_review", second_id)
    assert order["events"][-1]["details"]["rematched_to"] == second_id
    status, _ = await api.request("GET", f"/api/v1/work-orders/{order['id']}", token=first, role=None)
    assert status == 404  # no longer theirs
    order = await _act(api, order, "dispatch")
    await _act(api, order, "decline", token=second, reason="不在服务范围")
    status, order = await api.request("GET", f"/api/v1/work-orders/{order['id']}")
    assert order["provider_id"] is None  # nobody left who has not declined
    refused = await _act(api, order, "dispatch", expect=422)
    assert refused["error"]["field"] == "provider_id"


async def test_stale_version_and_illegal_transition_change_nothing(api: Api) -> None:
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "description": "维修水管", "service": "repair"})
    assert status == 201, order
    moved = await _act(api, order, "submit")
    stale = await _act(api, order, "cancel", reason="重复", expect=409)  # the version read before the submit
    assert stale["error"]["code"] == "stale_version"
    illegal = await _act(api, moved, "finish", receipt=RECEIPT, expect=409)
    assert illegal["error"]["code"] == "illegal_transition"
    _, now = await api.request("GET", f"/api/v1/work-orders/{order['id']}")
    assert (now["status"], now["version"], len(now["events"])) == ("under_review", moved["version"], 2)
    unknown = await _act(api, moved, "teleport", expect=422)
    assert unknown["error"]["field"] == "action"


async def test_consultation_answered_on_the_call_closes_at_once_else_has_48_hours(api: Api) -> None:
    status, answered = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "consultation", "title": "助餐补贴", "answer": "70 岁以上老人每餐补贴 3 元"})
    assert status == 201 and answered["status"] == "closed"
    assert answered["events"][-1]["details"]["within_deadline"] is True
    status, pending = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "consultation", "title": "长护险申请材料"})
    created = dt.datetime.fromisoformat(pending["created_at"])
    assert dt.datetime.fromisoformat(pending["due_at"]) - created == dt.timedelta(hours=48)
    assert set(pending["allowed_actions"]) == {"answer", "cancel"}
    closed = await _act(api, pending, "answer", answer="身份证、户口本、评估申请表")
    assert closed["status"] == "closed" and closed["resolution"].startswith("身份证")


async def test_complaint_investigated_resolved_with_the_complainant_and_closed(api: Api) -> None:
    provider_id, _, _ = await _provider(api, "被投诉家政")
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "complaint", "description": "护理员迟到两小时", "complaint": {
            "source": "consumer_association", "external_reference": "XF-2026-118",
            "complainant_name": "李明", "complainant_phone": "13700137000", "about_provider_id": provider_id}})
    assert status == 201, order
    assert order["complaint"]["source"] == "consumer_association"
    order = await _act(api, order, "investigate")
    order = await _act(api, order, "add_evidence", evidence="服务记录显示到达时间 11:05，约定 9:00")
    order = await _act(api, order, "propose_resolution", proposed_resolution="约谈服务商，免除本次费用")
    refused = await _act(api, order, "close", outcome="已处理", founded=True, expect=422)
    assert refused["error"]["field"] == "complainant_response"
    order = await _act(api, order, "contact_complainant", complainant_response="投诉人接受处理方案")
    order = await _act(api, order, "close", outcome="服务商整改，费用免除", founded=True)
    assert order["status"] == "closed" and order["complaint"]["founded"] is True
    status, provider = await api.request("GET", f"/api/v1/providers/{provider_id}")
    assert provider["rating"] == 2.5  # no rated orders (3.0) less half a star for the founded complaint
    assert len(order["complaint"]["evidence"]) == 1
    status, _ = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "complaint", "answer": "不适用"})
    assert status == 422


async def test_who_serves_an_order_cannot_be_edited_once_it_is_dispatched(api: Api) -> None:
    provider_id, _, _ = await _provider(api, "丙家政")
    other_id, _, _ = await _provider(api, "丁家政")
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "description": "助浴", "service": "bathing", "provider_id": provider_id})
    assert status == 201, order
    order = await _act(api, order, "submit")
    order = await _act(api, order, "dispatch")
    status, refused = await api.request("PATCH", f"/api/v1/work-orders/{order['id']}", role=Role.AGENT,
                                        json={"version": order["version"], "provider_id": other_id})
    assert status == 409 and refused["error"]["field"] == "provider_id"
    status, edited = await api.request("PATCH", f"/api/v1/work-orders/{order['id']}", role=Role.AGENT,
                                       json={"version": order["version"], "description": "助浴，需两人"})
    assert status == 200 and edited["provider_id"] == provider_id


async def test_a_provider_lists_its_orders_newest_dispatch_first(api: Api) -> None:
    provider_id, _, portal = await _provider(api, "戊家政")
    dispatched = []
    for priority in (1, 5):  # the later dispatch is the less urgent one: dispatch time still comes first
        status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
            "kind": "service_request", "description": "助浴", "service": "bathing", "priority": priority,
            "provider_id": provider_id})
        order = await _act(api, await _act(api, order, "submit"), "dispatch")
        dispatched.append(order["id"])
    status, page = await api.request("GET", "/api/v1/work-orders", token=portal, role=None)
    assert status == 200 and [o["id"] for o in page["items"]] == dispatched[::-1]
    assert all(o["dispatched_at"] for o in page["items"])


async def test_a_new_kind_brings_its_deadline_and_only_while_open(api: Api) -> None:
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "consultation", "title": "来电"})
    assert status == 201
    status, changed = await api.request("PATCH", f"/api/v1/work-orders/{order['id']}", role=Role.AGENT,
                                        json={"version": order["version"], "kind": "complaint"})
    assert status == 200, changed
    assert changed["complaint"]["source"] == "call" and "investigate" in changed["allowed_actions"]
    assert changed["due_at"] != order["due_at"]  # 5 working days, no longer 48 hours
    status, service = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "description": "维修", "service": "repair"})
    service = await _act(api, service, "submit")
    status, refused = await api.request("PATCH", f"/api/v1/work-orders/{service['id']}", role=Role.AGENT,
                                        json={"version": service["version"], "kind": "consultation"})
    assert status == 409 and refused["error"]["field"] == "kind"


async def test_a_reopened_order_needs_a_new_follow_up_before_it_closes(api: Api) -> None:
    provider_id, staff_id, portal = await _provider(api, "己家政")
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "description": "助浴", "service": "bathing", "provider_id": provider_id})
    assert status == 201, order
    order = await _act(api, await _act(api, order, "submit"), "dispatch")

    async def serve(order: dict[str, Any]) -> dict[str, Any]:
        order = await _act(api, order, "accept", token=portal)
        order = await _act(api, order, "start", token=portal, staff_id=staff_id)
        order = await _act(api, order, "finish", token=portal, receipt=RECEIPT)
        return await _act(api, order, "approve_receipt")

    order = await _act(api, await serve(order), "record_follow_up",
                       follow_up={"satisfaction": 5, "solved": True})
    order = await _act(api, order, "reopen", reason="老人反映次日又漏水")
    assert order["follow_up"] is None
    order = await serve(await _act(api, order, "dispatch"))
    refused = await _act(api, order, "close", expect=422)
    assert refused["error"]["field"] == "follow_up"


async def test_a_complaint_may_name_a_suspended_provider(api: Api) -> None:
    provider_id, _, _ = await _provider(api, "停业家政")
    async with api.db.transaction() as session:
        provider = await session.get(ServiceProvider, provider_id)
        assert provider is not None
        provider.active = False
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "complaint", "description": "预付费后停业", "complaint": {"about_provider_id": provider_id}})
    assert status == 201, order
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "complaint", "description": "x", "complaint": {"about_provider_id": 99999}})
    assert status == 422 and order["error"]["field"] == "complaint.about_provider_id"
