"""/api/v1/supervision-cases: reading the cases the scan raised, urging and resolving them, by role."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.orders.models import WorkOrderKind
from callcenter.supervision_cases.services import scan
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.supervision_cases import factory

T = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


async def _seed(api: Api) -> tuple[int, int, int, int]:
    """An overdue consultation of a provider's, and a dissatisfied service of nobody's: (case ids, order ids)."""
    async with api.db.transaction() as session:
        provider = await factory.provider(session, "安康助老服务中心")
        elder = await factory.elder(session, "李秀英")
        late = await factory.order(session, WorkOrderKind.CONSULTATION, T, provider_id=provider.id,
                                   elder_id=elder.id)
        rated = await factory.order(session, WorkOrderKind.SERVICE_REQUEST, T + 60 * HOUR)
        rated.receipt = {"summary": "维修水龙头", "result": "not_done", "duration_minutes": 5, "satisfaction": 1}
        cases = {case.work_order_id: case.id for case in await scan(session, T + 61 * HOUR)}
    return cases[late.id], cases[rated.id], late.id, provider.id


async def test_list_and_detail_name_the_order_provider_and_elder(api: Api) -> None:
    overdue, dissatisfied, order_id, provider_id = await _seed(api)
    status, page = await api.request("GET", "/api/v1/supervision-cases", role=Role.AGENT)
    assert status == 200, page
    assert page["total"] == 2 and {c["id"] for c in page["items"]} == {overdue, dissatisfied}
    [late] = [c for c in page["items"] if c["id"] == overdue]
    assert (late["reason"], late["status"], late["work_order_id"], late["provider_name"], late["elder_name"],
            late["work_order_status"], late["urging_count"]) == (
        "overdue", "open", order_id, "安康助老服务中心", "李秀英", "open", 0)
    assert late["work_order_number"].startswith("WO-") and late["trigger_key"] == f"overdue:order:{order_id}"

    async def ids(**params: str) -> list[int]:
        status, page = await api.request("GET", "/api/v1/supervision-cases", role=Role.AUDITOR, params=params)
        assert status == 200, page
        return [c["id"] for c in page["items"]]

    assert await ids(reason="dissatisfied") == [dissatisfied]
    assert await ids(provider_id=str(provider_id)) == [overdue]
    assert await ids(status="resolved") == [] and await ids(unresolved="false") == []
    assert sorted(await ids(unresolved="true")) == sorted([overdue, dissatisfied])
    status, detail = await api.request("GET", f"/api/v1/supervision-cases/{overdue}", role=Role.AUDITOR)
    assert status == 200 and detail["urgings"] == [] and detail["details"]["due_at"] == (T + 48 * HOUR).isoformat()


async def test_a_supervisor_urges_then_resolves_and_the_order_trail_records_both(api: Api) -> None:
    overdue, _, order_id, _ = await _seed(api)
    supervisor = await api.user(Role.SUPERVISOR, username="banzhang-wang")
    token = await api.token_for(supervisor)
    status, urging = await api.request("POST", f"/api/v1/supervision-cases/{overdue}/urgings", token=token, json={
        "method": "call", "message": "咨询已超过 48 小时未答复，请今天内回复老人", "result": "服务商承诺 17:00 前回电"})
    assert status == 201, urging
    assert (urging["method"], urging["actor_label"], urging["result"]) == ("call", "banzhang-wang",
                                                                         "服务商承诺 17:00 前回电")
    status, detail = await api.request("GET", f"/api/v1/supervision-cases/{overdue}", role=Role.AGENT)
    assert detail["status"] == "urging" and [u["id"] for u in detail["urgings"]] == [urging["id"]]
    assert detail["urging_count"] == 1

    status, resolved = await api.request("POST", f"/api/v1/supervision-cases/{overdue}/resolve", token=token,
                                         json={"resolution": "服务商已回电答复，老人表示满意"})
    assert status == 200, resolved
    assert (resolved["status"], resolved["resolution"], resolved["resolved_by_id"]) == (
        "resolved", "服务商已回电答复，老人表示满意", supervisor.id)
    assert resolved["resolved_at"] is not None and len(resolved["urgings"]) == 1

    async with api.db.transaction() as session:
        events = await factory.trail(session, order_id)
        audit = (await session.scalars(select(AuditEntry.action).where(
            AuditEntry.target_type == "supervision_case", AuditEntry.target_id == str(overdue))
            .order_by(AuditEntry.id))).all()
    assert [(e.action, e.actor_label) for e in events] == [
        ("created", "agent01"), ("supervision_case_opened", "system"), ("supervision_urging", "banzhang-wang"),
        ("supervision_case_resolved", "banzhang-wang")]
    assert events[2].details == {"case": detail["number"], "method": "call", "result": "服务商承诺 17:00 前回电"}
    assert audit == ["supervision_case.urge", "supervision_case.resolve"]

    # Resolved is final: no more urgings, no second resolution.
    status, body = await api.request("POST", f"/api/v1/supervision-cases/{overdue}/urgings", role=Role.SUPERVISOR,
                                     json={"method": "message", "result": "再次催办"})
    assert status == 409 and body["error"]["field"] == "status"
    status, body = await api.request("POST", f"/api/v1/supervision-cases/{overdue}/resolve", role=Role.ADMIN,
                                     json={"resolution": "again"})
    assert status == 409


async def test_roles_and_bad_input(api: Api) -> None:
    overdue, _, _, _ = await _seed(api)
    urge = f"/api/v1/supervision-cases/{overdue}/urgings"
    good = {"method": "message", "result": "已发平台消息，服务商已读"}
    for role in (Role.AGENT, Role.AUDITOR, Role.PROVIDER):
        assert (await api.request("POST", urge, role=role, json=good))[0] == 403
        assert (await api.request("POST", f"/api/v1/supervision-cases/{overdue}/resolve", role=role,
                                  json={"resolution": "x"}))[0] == 403
    assert (await api.request("GET", "/api/v1/supervision-cases", role=Role.PROVIDER))[0] == 403
    assert (await api.request("GET", "/api/v1/supervision-cases", role=None))[0] == 401
    status, body = await api.request("POST", urge, role=Role.SUPERVISOR, json={**good, "method": "fax"})
    assert status == 422 and body["error"]["field"] == "method"
    status, body = await api.request("POST", urge, role=Role.SUPERVISOR, json={**good, "result": "   "})
    assert status == 422 and body["error"]["field"] == "result"
    status, body = await api.request("POST", urge, role=Role.SUPERVISOR, json={"method": "call"})
    assert status == 422 and body["error"]["field"] == "result"
    status, body = await api.request("GET", "/api/v1/supervision-cases", params={"reason": "late"})
    assert status == 422 and body["error"]["field"] == "reason"
    status, body = await api.request("GET", "/api/v1/supervision-cases/999")
    assert status == 404 and body["error"]["field"] == "id"
    assert (await api.request("POST", "/api/v1/supervision-cases/999/urgings", role=Role.SUPERVISOR,
                              json=good))[0] == 404
    # Nothing above changed the case.
    status, detail = await api.request("GET", f"/api/v1/supervision-cases/{overdue}")
    assert (detail["status"], detail["urgings"]) == ("open", [])
