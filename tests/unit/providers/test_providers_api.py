"""/api/v1/providers and the order's service and provider: registry, suggestions with reasons, validation."""

from __future__ import annotations

from typing import Any

from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.users.models import Role
from tests.apiclient import Api


async def _provider(api: Api, name: str, services: list[str], communities: list[str]) -> dict[str, Any]:
    status, body = await api.request("POST", "/api/v1/providers", json={
        "name": name, "phone": "17700000601", "services": services, "communities": communities})
    assert status == 201, body
    return dict(body)


async def test_suggestions_put_the_elders_choice_first_then_the_community_then_citywide(api: Api) -> None:
    local = await _provider(api, "和平服务站", ["meal_delivery", "cleaning"], ["和平社区"])
    citywide = await _provider(api, "全市助餐", ["meal_delivery"], [])
    elsewhere = await _provider(api, "幸福助餐", ["meal_delivery"], ["幸福社区"])
    chosen = await _provider(api, "老人自选", ["meal_delivery"], ["幸福社区"])
    await _provider(api, "只修东西", ["repair"], ["和平社区"])
    status, elder = await api.request("POST", "/api/v1/elders", json={
        "full_name": "测试老人", "community": "和平社区", "preferred_provider_id": chosen["id"]})
    assert status == 201 and elder["preferred_provider_id"] == chosen["id"], elder

    status, body = await api.request("GET", "/api/v1/providers/suggestions", role=Role.AGENT,
                                     params={"service": "meal_delivery", "elder_id": str(elder["id"])})
    assert status == 200, body
    assert [(s["provider"]["id"], s["reason"], s["rank"]) for s in body["items"]] == [
        (chosen["id"], "chosen_by_elder", 1), (local["id"], "serves_community", 2),
        (citywide["id"], "citywide", 3), (elsewhere["id"], "other_area", 4)]

    # Without an elder: who offers the service, city-wide ones before other areas.
    status, body = await api.request("GET", "/api/v1/providers/suggestions", role=Role.AGENT,
                                     params={"service": "cleaning"})
    assert [s["provider"]["name"] for s in body["items"]] == ["和平服务站"]
    status, body = await api.request("GET", "/api/v1/providers", role=Role.AGENT, params={"service": "repair"})
    assert [p["name"] for p in body["items"]] == ["只修东西"]


async def test_registry_and_suggestion_errors(api: Api) -> None:
    await _provider(api, "和平服务站", ["meal_delivery"], [])
    status, body = await api.request("POST", "/api/v1/providers", json={
        "name": "和平服务站", "services": ["cleaning"]})
    assert status == 409 and body["error"]["field"] == "name"
    status, body = await api.request("POST", "/api/v1/providers", json={"name": "空", "services": []})
    assert status == 422 and body["error"]["field"] == "services"
    status, body = await api.request("POST", "/api/v1/providers", json={"name": "x", "services": ["flying"]})
    assert status == 422
    assert (await api.request("POST", "/api/v1/providers", role=Role.AGENT,
                              json={"name": "y", "services": ["repair"]}))[0] == 403
    status, body = await api.request("GET", "/api/v1/providers/suggestions", params={"service": "meal_delivery",
                                                                                      "elder_id": "999"})
    assert status == 404 and body["error"]["field"] == "elder_id"
    status, body = await api.request("POST", "/api/v1/elders", json={"full_name": "某", "preferred_provider_id": 999})
    assert status == 422 and body["error"]["field"] == "preferred_provider_id"


async def test_the_agent_sets_the_service_and_a_provider_offering_it_and_both_land_on_the_trail(api: Api) -> None:
    meals = await _provider(api, "和平服务站", ["meal_delivery"], [])
    repairs = await _provider(api, "维修队", ["repair"], [])
    async with api.db.transaction() as session:
        elder = Elder(full_name="测试")
        session.add(elder)
        await session.flush()
        order_id = (await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="ivr",
                                      elder_id=elder.id, service="meal_delivery")).id

    url = f"/api/v1/work-orders/{order_id}"
    status, order = await api.request("GET", url, role=Role.AGENT)
    assert (order["service"], order["provider_id"]) == ("meal_delivery", None)  # the IVR knew the service
    status, body = await api.request("PATCH", url, role=Role.AGENT, json={"version": 1, "provider_id": repairs["id"]})
    assert status == 422 and body["error"]["field"] == "provider_id" and "does not offer" in body["error"]["message"]
    status, order = await api.request("PATCH", url, role=Role.AGENT, json={"version": 1, "provider_id": meals["id"]})
    assert status == 200, order
    assert order["provider_id"] == meals["id"] and order["events"][-1]["details"] == {
        "changes": {"provider_id": [None, meals["id"]]}}
    # Changing the service to one the chosen provider does not offer is refused; with a new provider it is not.
    status, body = await api.request("PATCH", url, role=Role.AGENT, json={"version": 2, "service": "repair"})
    assert status == 422 and body["error"]["field"] == "provider_id"
    status, order = await api.request("PATCH", url, role=Role.AGENT, json={
        "version": 2, "service": "repair", "provider_id": repairs["id"]})
    assert status == 200 and (order["service"], order["provider_id"], order["version"]) == (
        "repair", repairs["id"], 3)
    assert order["events"][-1]["details"]["changes"]["service"] == ["meal_delivery", "repair"]
    status, order = await api.request("PATCH", url, role=Role.AGENT, json={"version": 3, "provider_id": None})
    assert status == 200 and order["provider_id"] is None
    status, body = await api.request("PATCH", url, role=Role.AGENT, json={"version": 4, "service": "juggling"})
    assert status == 422 and body["error"]["field"] == "service"
