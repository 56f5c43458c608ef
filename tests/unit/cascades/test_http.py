"""/api/v1/elders/{id}/responders, /api/v1/cascades and /help-coming through the REST API: roles, fields named
in refusals, and the agent's controls."""

from __future__ import annotations

from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.users.models import Role
from tests.apiclient import Api


async def test_responders_cascades_and_help_coming_over_the_api(api: Api) -> None:
    async with api.db.transaction() as session:
        elder = Elder(full_name="吴桂芳", phone="17700005555", address="x", community="y")
        elder.contacts = [Contact(role=ContactRole.RELATIVE, name="吴大", phone="13900000101", priority=1),
                          Contact(role=ContactRole.VOLUNTEER, name="志愿者", phone="13900000102", priority=1)]
        session.add(elder)
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="test", elder_id=elder.id)
        elder_id, order_id = elder.id, order.id
        relative, volunteer = elder.contacts[0].id, elder.contacts[1].id

    status, listed = await api.request("GET", f"/api/v1/elders/{elder_id}/responders", role=Role.AGENT)
    assert status == 200 and listed["configured"] is False, listed
    assert [r["name"] for r in listed["responders"]] == ["吴大", "志愿者"]
    status, body = await api.request("PUT", f"/api/v1/elders/{elder_id}/responders", role=Role.AGENT, json={
        "responders": [{"contact_id": volunteer, "channel": "both", "wait_seconds": 60, "eta_minutes": 10},
                       {"contact_id": relative}]})
    assert status == 200 and body["configured"] is True, body
    assert [(r["name"], r["channel"], r["eta_minutes"]) for r in body["responders"]] == [
        ("志愿者", "both", 10), ("吴大", "call", 30)]
    status, body = await api.request("PUT", f"/api/v1/elders/{elder_id}/responders", role=Role.AGENT, json={
        "responders": [{"contact_id": relative, "wait_seconds": 5}]})
    assert status == 422 and body["error"]["field"] == "responders.0.wait_seconds", body
    assert (await api.request("PUT", f"/api/v1/elders/{elder_id}/responders", role=Role.PROVIDER,
                              json={"responders": []}))[0] == 403

    status, body = await api.request("POST", "/api/v1/cascades", role=Role.AGENT, json={})
    assert status == 422, body
    status, cascade = await api.request("POST", "/api/v1/cascades", role=Role.AGENT,
                                        json={"work_order_id": order_id})
    assert status == 201 and cascade["state"] == "running", cascade
    assert [(c["name"], c["state"]) for c in cascade["calls"]] == [("志愿者", "calling")]
    # The volunteer's step is "both": called, and texted (SMS is off here: the message is kept as failed, and
    # the order says why).
    status, texts = await api.request("GET", f"/api/v1/notifications?work_order_id={order_id}", role=Role.AGENT)
    assert status == 200, texts
    assert [(t["purpose"], t["template"], t["state"]) for t in texts["items"]] == [
        ("cascade", "cascade_request", "failed")], texts
    status, paused = await api.request("POST", f"/api/v1/cascades/{cascade['id']}/pause", role=Role.AGENT)
    assert status == 200 and paused["state"] == "paused", paused
    status, body = await api.request("POST", f"/api/v1/cascades/{cascade['id']}/pause", role=Role.AGENT)
    assert status == 409, body
    status, resumed = await api.request("POST", f"/api/v1/cascades/{cascade['id']}/resume", role=Role.AGENT)
    assert status == 200 and resumed["state"] == "running", resumed
    status, stopped = await api.request("POST", f"/api/v1/cascades/{cascade['id']}/stop", role=Role.SUPERVISOR)
    assert status == 200 and stopped["state"] == "stopped", stopped
    status, listed = await api.request("GET", f"/api/v1/cascades?work_order_id={order_id}", role=Role.AUDITOR)
    assert status == 200 and [c["state"] for c in listed["items"]] == ["stopped"], listed

    status, body = await api.request("POST", f"/api/v1/work-orders/{order_id}/help-coming", role=Role.AGENT,
                                     json={"eta_minutes": 0})
    assert status == 422 and body["error"]["field"] == "eta_minutes", body
    status, told = await api.request("POST", f"/api/v1/work-orders/{order_id}/help-coming", role=Role.AGENT,
                                     json={"eta_minutes": 15})
    assert status == 201 and told["eta_minutes"] == 15, told
    status, jobs = await api.request("GET", f"/api/v1/outbound-jobs?purpose=notification&elder_id={elder_id}",
                                     role=Role.AGENT)
    assert status == 200 and [j["id"] for j in jobs["items"]] == [told["job_id"]], jobs
