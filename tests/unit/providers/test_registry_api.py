"""The provider registry over HTTP: fields and validation, staff, portal accounts confined to their provider, API
keys, matching figures (distance, rating, load, exclusion, licence) and the evaluation."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Invalid
from callcenter.audit.models import AuditEntry
from callcenter.elders.models import Elder
from callcenter.orders.models import Complaint, ComplaintSource, WorkOrder, WorkOrderKind, WorkOrderStatus
from callcenter.orders.schemas import Action, ActionPayload
from callcenter.orders.services import raise_order
from callcenter.orders.workflow import WorkflowActor, perform
from callcenter.providers.models import ProviderApiKey, ServiceProvider, ServiceType
from callcenter.providers.services import (
    active_provider,
    evaluate,
    haversine_km,
    recompute_rating,
    suggest,
)
from callcenter.supervision_cases.models import CaseReason, SupervisionCase, SupervisionUrging, UrgingMethod
from callcenter.users.models import Role, User
from tests.apiclient import PASSWORD, Api

FULL = {
    "name": "和平居家服务中心", "phone": "0371-65123456", "services": ["meal_delivery", "cleaning"],
    "communities": ["和平社区", "幸福社区"], "contact_person": "刘站长", "address": "示范市东城区和平路 1 号",
    "latitude": 34.75, "longitude": 113.62, "qualification": "养老服务机构备案", "licence_number": "91410100MA00000001",
    "licence_expires_on": "2099-12-31",
    "fees": {"meal_delivery": {"price_yuan": 12.5, "unit": "餐"}, "cleaning": {"price_yuan": 0, "note": "政府补贴"}},
}


async def _provider(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"name": f"服务商-{secrets.token_hex(3)}", "services": ["meal_delivery"], **fields}
    status, created = await api.request("POST", "/api/v1/providers", role=Role.SUPERVISOR, json=body)
    assert status == 201, created
    return dict(created)


async def _audit_actions(api: Api) -> list[str]:
    async with api.db.transaction() as session:
        return list((await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all())


async def test_register_read_and_change_every_field(api: Api) -> None:
    created = await _provider(api, **FULL)
    assert created["phone"] == "037165123456"  # the elders' phone rules: stored as digits
    assert created["fees"] == {"meal_delivery": {"price_yuan": 12.5, "unit": "餐", "note": None},
                               "cleaning": {"price_yuan": 0.0, "unit": None, "note": "政府补贴"}}
    assert (created["licence_expires_on"], created["rating"], created["active"]) == ("2099-12-31", None, True)
    url = f"/api/v1/providers/{created['id']}"
    status, read = await api.request("GET", url, role=Role.AGENT)
    assert status == 200 and read == created

    status, changed = await api.request("PATCH", url, role=Role.SUPERVISOR, json={
        "services": ["meal_delivery"], "fees": {"meal_delivery": {"price_yuan": 15}}, "communities": [],
        "licence_expires_on": "2030-06-30", "active": False, "contact_person": None})
    assert status == 200, changed
    assert (changed["services"], changed["communities"], changed["fees"], changed["active"],
            changed["contact_person"], changed["licence_expires_on"]) == (
        ["meal_delivery"], [], {"meal_delivery": {"price_yuan": 15.0, "unit": None, "note": None}}, False, None,
        "2030-06-30")
    assert changed["address"] == FULL["address"]  # untouched
    assert await _audit_actions(api) == ["provider.create", "provider.update"]
    async with api.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "provider.update"))
        assert entry is not None and entry.details == {"fields": [
            "active", "communities", "contact_person", "fees", "licence_expires_on", "services"]}


async def test_registry_validation(api: Api) -> None:
    provider = await _provider(api, **FULL)
    url = f"/api/v1/providers/{provider['id']}"
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**FULL, "name": "其他", "fees": {"repair": {"price_yuan": 1}}}, "", "fees for services not offered"),
        ({**FULL, "name": "其他", "fees": {"cleaning": {"price_yuan": -1}}}, "fees.cleaning.price_yuan", ""),
        ({**FULL, "name": "其他", "phone": "12"}, "phone", "not a Chinese mobile"),
        ({**FULL, "name": "其他", "latitude": 91}, "latitude", ""),
        ({**FULL, "name": "其他", "licence_expires_on": "soon"}, "licence_expires_on", ""),
    ]
    for body, field, message in cases:
        status, answer = await api.request("POST", "/api/v1/providers", json=body)
        assert status == 422, (body, answer)
        assert (answer["error"]["field"] or "") == field and message in answer["error"]["message"], answer
    # PATCH: fees must name services offered after the change; required fields may not be nulled.
    status, answer = await api.request("PATCH", url, json={"services": ["cleaning"]})
    assert status == 422 and answer["error"]["field"] == "services" and "meal_delivery" in answer["error"]["message"]
    status, answer = await api.request("PATCH", url, json={"fees": {"repair": {"price_yuan": 3}}})
    assert status == 422 and "not offered: repair" in answer["error"]["message"]
    status, answer = await api.request("PATCH", url, json={"services": None})
    assert status == 422 and answer["error"]["field"] == "services"
    status, answer = await api.request("PATCH", url, json={"name": "x", "colour": "red"})
    assert status == 422 and answer["error"]["field"] == "colour"
    other = await _provider(api)
    status, answer = await api.request("PATCH", url, json={"name": other["name"]})
    assert status == 409 and answer["error"]["field"] == "name"
    status, answer = await api.request("PATCH", "/api/v1/providers/999", json={"active": False})
    assert status == 404
    # Only admins and supervisors write; nothing changed by the refusals.
    assert (await api.request("PATCH", url, role=Role.AGENT, json={"active": False}))[0] == 403
    assert (await api.request("POST", "/api/v1/providers", role=Role.AUDITOR, json=FULL))[0] == 403
    status, read = await api.request("GET", url)
    assert read == provider


async def test_staff_with_skills_among_the_providers_services(api: Api) -> None:
    provider = await _provider(api, services=["bathing", "cleaning"])
    url = f"/api/v1/providers/{provider['id']}/staff"
    status, person = await api.request("POST", url, role=Role.SUPERVISOR, json={
        "name": "王护理", "phone": "177 0000 0301", "skills": ["bathing"], "certificate": "养老护理员(中级) 123"})
    assert status == 201, person
    assert (person["phone"], person["skills"], person["active"], person["provider_id"]) == (
        "17700000301", ["bathing"], True, provider["id"])
    status, answer = await api.request("POST", url, json={"name": "李", "skills": ["repair"]})
    assert status == 422 and answer["error"]["field"] == "skills" and "repair" in answer["error"]["message"]
    status, answer = await api.request("POST", url, json={"name": "李", "phone": "5555"})
    assert status == 422 and answer["error"]["field"] == "phone"

    status, changed = await api.request("PATCH", f"{url}/{person['id']}", json={"skills": ["bathing", "cleaning"]})
    assert status == 200 and changed["skills"] == ["bathing", "cleaning"]
    # The provider cannot drop a service an active staff member still delivers; deactivated, it can.
    status, answer = await api.request("PATCH", f"/api/v1/providers/{provider['id']}", json={"services": ["bathing"]})
    assert status == 422 and "王护理" in answer["error"]["message"]
    status, changed = await api.request("PATCH", f"{url}/{person['id']}", json={"active": False})
    assert status == 200 and changed["active"] is False
    status, _ = await api.request("PATCH", f"/api/v1/providers/{provider['id']}", json={"services": ["bathing"]})
    assert status == 200
    # Reactivating someone whose skills the provider no longer offers is refused until the skills are fixed.
    status, answer = await api.request("PATCH", f"{url}/{person['id']}", json={"active": True})
    assert status == 422 and answer["error"]["field"] == "skills"
    status, changed = await api.request("PATCH", f"{url}/{person['id']}", json={"active": True, "skills": []})
    assert status == 200 and (changed["active"], changed["skills"]) == (True, [])

    other = await _provider(api)
    status, answer = await api.request("PATCH", f"/api/v1/providers/{other['id']}/staff/{person['id']}",
                                       json={"name": "x"})
    assert status == 404 and answer["error"]["field"] == "staff_id"
    status, listed = await api.request("GET", url, role=Role.AGENT)
    assert status == 200 and [s["id"] for s in listed["items"]] == [person["id"]]
    assert (await _audit_actions(api)).count("provider_staff.update") == 3  # the refusal left none


async def test_portal_account_sees_and_manages_only_its_own_provider(api: Api) -> None:
    own = await _provider(api, services=["repair"])
    other = await _provider(api, services=["repair"])
    status, account = await api.request("POST", f"/api/v1/providers/{own['id']}/accounts", role=Role.SUPERVISOR,
                                        json={"username": "heping-repair", "password": PASSWORD,
                                              "display_name": "和平维修"})
    assert status == 201, account
    assert (account["role"], account["provider_id"], account["username"]) == ("provider", own["id"],
                                                                               "heping-repair")
    status, answer = await api.request("POST", f"/api/v1/providers/{own['id']}/accounts",
                                       json={"username": "heping-repair", "password": PASSWORD})
    assert status == 409 and answer["error"]["field"] == "username"
    # The account logs in like any user and is bound to its provider.
    status, login = await api.request("POST", "/api/v1/auth/login", role=None,
                                      json={"username": "heping-repair", "password": PASSWORD})
    assert status == 200, login
    token = login["token"]

    status, read = await api.request("GET", f"/api/v1/providers/{own['id']}", token=token)
    assert status == 200 and read["id"] == own["id"]
    status, person = await api.request("POST", f"/api/v1/providers/{own['id']}/staff", token=token,
                                       json={"name": "张师傅", "skills": ["repair"]})
    assert status == 201, person
    status, person = await api.request("PATCH", f"/api/v1/providers/{own['id']}/staff/{person['id']}",
                                       token=token, json={"active": False})
    assert status == 200 and person["active"] is False
    status, listed = await api.request("GET", f"/api/v1/providers/{own['id']}/staff", token=token)
    assert status == 200 and len(listed["items"]) == 1
    # Another provider does not exist for it; the registry's writes and lists are not its business.
    for method, path, body in [("GET", f"/api/v1/providers/{other['id']}", None),
                               ("GET", f"/api/v1/providers/{other['id']}/staff", None),
                               ("POST", f"/api/v1/providers/{other['id']}/staff", {"name": "x"}),
                               ("GET", f"/api/v1/providers/{other['id']}/evaluation", None)]:
        status, answer = await api.request(method, path, token=token, json=body)
        assert status == 404, (path, answer)
    for method, path, body in [("PATCH", f"/api/v1/providers/{own['id']}", {"active": False}),
                               ("GET", "/api/v1/providers", None),
                               ("POST", f"/api/v1/providers/{own['id']}/api-keys", None),
                               ("POST", f"/api/v1/providers/{own['id']}/accounts",
                                {"username": "another", "password": PASSWORD})]:
        status, _ = await api.request(method, path, token=token, json=body)
        assert status == 403, path
    async with api.db.transaction() as session:
        user = await session.scalar(select(User).where(User.username == "heping-repair"))
        assert user is not None and user.provider_id == own["id"] and user.role is Role.PROVIDER
    actions = await _audit_actions(api)
    assert {"user.create", "provider.account_create", "provider_staff.create", "provider_staff.update"} <= set(
        actions)


async def test_api_keys_show_the_secret_once_and_revoke(api: Api) -> None:
    provider = await _provider(api)
    url = f"/api/v1/providers/{provider['id']}/api-keys"
    status, key = await api.request("POST", url, role=Role.SUPERVISOR)
    assert status == 201, key
    assert key["key_id"].startswith("ccpk_") and len(key["secret"]) >= 43 and key["revoked_at"] is None
    status, second = await api.request("POST", url)
    assert status == 201 and second["secret"] != key["secret"]
    status, listed = await api.request("GET", url)
    assert status == 200 and [k["key_id"] for k in listed["items"]] == [key["key_id"], second["key_id"]]
    assert all("secret" not in k for k in listed["items"])
    status, revoked = await api.request("DELETE", f"{url}/{key['key_id']}")
    assert status == 200 and revoked["revoked_at"] is not None
    status, again = await api.request("DELETE", f"{url}/{key['key_id']}")
    assert status == 200 and again["revoked_at"] == revoked["revoked_at"]
    other = await _provider(api)
    status, answer = await api.request("DELETE", f"/api/v1/providers/{other['id']}/api-keys/{second['key_id']}")
    assert status == 404 and answer["error"]["field"] == "key"
    assert (await api.request("GET", url, role=Role.AGENT))[0] == 403
    assert (await api.request("POST", "/api/v1/providers/999/api-keys"))[0] == 404
    async with api.db.transaction() as session:
        stored = (await session.scalars(select(ProviderApiKey).order_by(ProviderApiKey.id))).all()
        assert [k.secret for k in stored] == [key["secret"], second["secret"]]
    actions = await _audit_actions(api)
    assert actions.count("provider_api_key.create") == 2 and actions.count("provider_api_key.revoke") == 1


def test_haversine_matches_a_known_distance() -> None:
    # Zhengzhou railway station to Zhengzhou East station: about 11 km great-circle.
    assert abs(haversine_km(34.7459, 113.6584, 34.7601, 113.7775) - 10.99) < 0.1
    assert haversine_km(30, 120, 30, 120) == 0


async def _order(session: AsyncSession, provider_id: int, status: WorkOrderStatus, *, satisfaction: int | None = None,
                 kind: WorkOrderKind = WorkOrderKind.SERVICE_REQUEST) -> WorkOrder:
    order = WorkOrder(number=f"T{secrets.token_hex(5)}", kind=kind, status=status, title="测试",
                      service="meal_delivery", provider_id=provider_id, satisfaction=satisfaction)
    session.add(order)
    await session.flush()
    return order


async def test_matching_ranks_by_area_distance_rating_and_load_with_the_figures(api: Api) -> None:
    # The elder lives in 和平社区 at (34.75, 113.62).
    near = await _provider(api, name="近的", communities=["和平社区"], latitude=34.75, longitude=113.63)  # ~0.9 km
    far = await _provider(api, name="远的", communities=["和平社区"], latitude=34.85, longitude=113.62)  # ~11 km
    citywide = await _provider(api, name="全市", latitude=34.76, longitude=113.62)  # ~1.1 km
    await _provider(api, name="无坐标", communities=["别的社区"])
    expired = await _provider(api, name="过期", communities=["和平社区"], licence_expires_on="2000-01-01")
    inactive = await _provider(api, name="停用", communities=["和平社区"], active=False)
    chosen = await _provider(api, name="自选", communities=["别的社区"])
    async with api.db.transaction() as session:
        elder = Elder(full_name="测试", community="和平社区", latitude=34.75, longitude=113.62,
                      preferred_provider_id=chosen["id"])
        session.add(elder)
        for _ in range(3):
            await _order(session, near["id"], WorkOrderStatus.IN_SERVICE)
        await _order(session, near["id"], WorkOrderStatus.DISPATCHED)
        await _order(session, near["id"], WorkOrderStatus.CLOSED)  # not load
        await _order(session, far["id"], WorkOrderStatus.OPEN)  # not load either
        (await session.get(ServiceProvider, far["id"])).rating = 5.0  # type: ignore[union-attr]
        (await session.get(ServiceProvider, citywide["id"])).rating = 2.0  # type: ignore[union-attr]
        await session.flush()
        elder_id = elder.id

    status, body = await api.request("GET", "/api/v1/providers/suggestions", role=Role.AGENT,
                                     params={"service": "meal_delivery", "elder_id": str(elder_id)})
    assert status == 200, body
    figures = [(s["provider"]["name"], s["reason"], s["rank"], s["distance_km"], s["rating"], s["load"], s["score"])
               for s in body["items"]]
    # near: 3 + 2×(1−0.91/10) − 4×0.25 = 3.82; far: 3 + 0 + 1 = 4.0; citywide: 2 + 1.78 − 0.5 = 3.28;
    # unplaced: 0 + 1 (unknown distance); the chosen one first whatever its score.
    assert figures == [
        ("自选", "chosen_by_elder", 1, None, None, 0, 1.0),
        ("远的", "serves_community", 2, 11.12, 5.0, 0, 4.0),
        ("近的", "serves_community", 3, 0.91, None, 4, 3.82),
        ("全市", "citywide", 4, 1.11, 2.0, 0, 3.28),
        ("无坐标", "other_area", 5, None, None, 0, 1.0),
    ], figures
    assert expired["id"] not in [s["provider"]["id"] for s in body["items"]]
    assert inactive["id"] not in [s["provider"]["id"] for s in body["items"]]

    async with api.db.transaction() as session:
        # Those who declined the order never appear, the elder's choice included.
        found = await suggest(session, ServiceType.MEAL_DELIVERY, elder_id, today=dt.date.today(),
                              exclude=[chosen["id"], far["id"]])
        assert [s.provider.name for s in found] == ["近的", "全市", "无坐标"]
        assert [s.rank for s in found] == [1, 2, 3]
        # The licence is valid through its expiry day.
        on_the_day = await suggest(session, ServiceType.MEAL_DELIVERY, None, today=dt.date(2000, 1, 1))
        assert "过期" in [s.provider.name for s in on_the_day]


async def test_an_expired_licence_is_refused_where_a_provider_is_named(api: Api) -> None:
    provider = await _provider(api, licence_expires_on="2001-05-31")
    async with api.db.transaction() as session:
        try:
            await active_provider(session, provider["id"], "meal_delivery", today=dt.date(2001, 6, 1))
        except Invalid as error:
            assert error.code == "licence_expired" and "expired on 2001-05-31" in error.message
        else:
            raise AssertionError("an expired licence was accepted")
        assert (await active_provider(session, provider["id"], today=dt.date(2001, 5, 31))).id == provider["id"]
    status, answer = await api.request("POST", "/api/v1/elders", role=Role.AGENT, json={
        "full_name": "某", "preferred_provider_id": provider["id"]})
    assert status == 422 and answer["error"]["field"] == "preferred_provider_id"
    assert "licence expired" in answer["error"]["message"]


async def test_a_licence_runs_through_its_last_day_in_the_centres_time_zone(api: Api) -> None:
    """Expiring on 1 June: at 23:00 in Beijing that day an order is still dispatched to the provider; at 01:00 on
    2 June (still 1 June in UTC) it is refused."""
    provider = await _provider(api, licence_expires_on="2026-06-01")
    centre = WorkflowActor(user_id=None, label="审核员", role=Role.SUPERVISOR)
    beijing = ZoneInfo("Asia/Shanghai")

    async def dispatch(at: dt.datetime) -> WorkOrder:
        async with api.db.transaction() as session:
            order = await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="test",
                                      service="meal_delivery", description="午餐送餐")
            await perform(session, order.id, Action.SUBMIT, actor=centre, version=None, payload=ActionPayload(),
                          tz=beijing, now=at)
            return await perform(session, order.id, Action.DISPATCH, actor=centre, version=None,
                                 payload=ActionPayload(provider_id=provider["id"]), tz=beijing, now=at)

    last_evening = dt.datetime(2026, 6, 1, 23, 0, tzinfo=beijing)
    assert (await dispatch(last_evening)).provider_id == provider["id"]
    next_night = dt.datetime(2026, 6, 2, 1, 0, tzinfo=beijing)
    assert next_night.astimezone(dt.UTC).date() == dt.date(2026, 6, 1)
    try:
        await dispatch(next_night)
    except Invalid as error:
        assert error.code == "licence_expired"
    else:
        raise AssertionError("a licence past its last day in Beijing was accepted")


async def test_evaluation_figures_and_the_rating_formula(api: Api) -> None:
    provider = await _provider(api)
    other = await _provider(api)
    unrated = await _provider(api)
    url = f"/api/v1/providers/{provider['id']}/evaluation"
    status, body = await api.request("GET", url, role=Role.AUDITOR)
    assert status == 200 and body == {"provider_id": provider["id"], "orders_closed": 0, "rated_orders": 0,
                                      "average_satisfaction": None, "founded_complaints": 0,
                                      "supervision_cases": 0, "urgings": 0, "rating": None}
    async with api.db.transaction() as session:
        for satisfaction in (5, 4, 4, None):
            await _order(session, provider["id"], WorkOrderStatus.CLOSED, satisfaction=satisfaction)
        await _order(session, provider["id"], WorkOrderStatus.FOLLOW_UP, satisfaction=1)  # not closed yet
        await _order(session, other["id"], WorkOrderStatus.CLOSED, satisfaction=1)
        for about, founded in ((provider, True), (provider, False), (provider, None), (unrated, True)):
            complaint = await _order(session, other["id"], WorkOrderStatus.CLOSED, kind=WorkOrderKind.COMPLAINT)
            session.add(Complaint(work_order_id=complaint.id, source=ComplaintSource.CALL,
                                  about_provider_id=about["id"], founded=founded))
        case = SupervisionCase(number=f"SC{secrets.token_hex(4)}", reason=CaseReason.OVERDUE,
                               trigger_key=f"t:{secrets.token_hex(4)}", provider_id=provider["id"], summary="超时")
        session.add(case)
        session.add(SupervisionCase(number=f"SC{secrets.token_hex(4)}", reason=CaseReason.OVERDUE,
                                    trigger_key=f"t:{secrets.token_hex(4)}", provider_id=other["id"], summary="x"))
        await session.flush()
        for _ in range(2):
            session.add(SupervisionUrging(case_id=case.id, method=UrgingMethod.CALL, actor_label="督办员",
                                          result="已催"))
    status, body = await api.request("GET", url, role=Role.SUPERVISOR)
    assert status == 200, body
    # Average 4.33 (5, 4, 4) − 0.5 × 1 founded complaint − 0.1 × 2 urgings = 3.63.
    assert body == {"provider_id": provider["id"], "orders_closed": 4, "rated_orders": 3,
                    "average_satisfaction": 4.33, "founded_complaints": 1, "supervision_cases": 1, "urgings": 2,
                    "rating": 3.63}
    async with api.db.transaction() as session:
        assert await recompute_rating(session, provider["id"]) == 3.63
        # Without rated orders the base is neutral: 3.0 − 0.5; the rating never goes below 1.
        assert (await evaluate(session, unrated["id"])).rating == 2.5
        assert (await evaluate(session, other["id"])).rating == 1.0  # one closed order rated 1
    status, read = await api.request("GET", f"/api/v1/providers/{provider['id']}")
    assert read["rating"] == 3.63
