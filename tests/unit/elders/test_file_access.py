"""Who sees an elder's resident ID in full, the audited reveal, and the audit of every read of a file
(callcenter.elders.access; issue 14, GB/T 35273)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call, Disposition
from callcenter.db.base import utcnow
from callcenter.users.models import Role, User
from tests.apiclient import Api
from tests.unit.elders.test_elders_api import ELDER

FULL_ID = ELDER["id_number"]
MASKED_ID = "1101**********002X"


async def _elder(api: Api, **changes: object) -> int:
    status, body = await api.request("POST", "/api/v1/elders", role=Role.SUPERVISOR, json={**ELDER, **changes})
    assert status == 201, body
    return int(body["id"])


async def _call(api: Api, elder_id: int | None, agent: User | None, *, ended: bool = False,
                started: dt.datetime | None = None) -> int:
    started = started or utcnow() - dt.timedelta(minutes=2)
    async with api.db.transaction() as session:
        call = Call(linkedid=f"{started.timestamp()}.{elder_id}.{agent.id if agent else 0}.{ended}",
                    elder_id=elder_id, agent_id=agent.id if agent else None, started_at=started,
                    answered_at=started, ended_at=utcnow() if ended else None,
                    disposition=Disposition.ANSWERED if ended else Disposition.IN_PROGRESS)
        session.add(call)
        await session.flush()
        return call.id


async def _entries(api: Api, action: str) -> list[AuditEntry]:
    async with api.db.transaction() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                          .order_by(AuditEntry.id)))


async def _as(api: Api, user: User, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    return await api.request(method, path, token=await api.token_for(user), **kwargs)


async def test_an_agent_sees_the_full_id_only_while_on_a_live_call_with_the_elder(api: Api) -> None:
    elder_id = await _elder(api)
    other_elder = await _elder(api, id_number=None, full_name="另一位", contacts=[])
    on_call, idle, supervisor = (await api.user(Role.AGENT), await api.user(Role.AGENT),
                                 await api.user(Role.SUPERVISOR))
    live = await _call(api, elder_id, on_call)
    await _call(api, elder_id, idle, ended=True)  # an ended call with the elder
    await _call(api, other_elder, idle)  # a live call, with someone else
    await _call(api, elder_id, idle, started=utcnow() - dt.timedelta(hours=13))  # its end never seen: stale
    await _call(api, elder_id, supervisor)  # a supervisor who answered still reveals

    status, file = await _as(api, on_call, "GET", f"/api/v1/elders/{elder_id}")
    assert status == 200 and (file["id_number"], file["masked_fields"]) == (FULL_ID, [])
    for reader in (idle, supervisor):
        status, file = await _as(api, reader, "GET", f"/api/v1/elders/{elder_id}")
        assert status == 200 and (file["id_number"], file["masked_fields"]) == (MASKED_ID, ["id_number"])
    # The answers of writes follow the same rule.
    status, patched = await _as(api, on_call, "PATCH", f"/api/v1/elders/{elder_id}", json={"care_level": 4})
    assert status == 200 and patched["id_number"] == FULL_ID
    status, patched = await _as(api, idle, "PATCH", f"/api/v1/elders/{elder_id}", json={"care_level": 5})
    assert status == 200 and patched["id_number"] == MASKED_ID

    reads = await _entries(api, "elder.read")
    assert [(e.actor_id, e.target_type, e.target_id, e.source_ip) for e in reads] == [
        (on_call.id, "elder", str(elder_id), "127.0.0.1"), (idle.id, "elder", str(elder_id), "127.0.0.1"),
        (supervisor.id, "elder", str(elder_id), "127.0.0.1")]
    assert reads[0].details == {"justified_by": "live_call", "live_call_id": live, "shown_in_full": ["id_number"]}
    assert reads[1].details == {"justified_by": "none", "shown_in_full": []}
    assert reads[2].details["justified_by"] == "live_call" and reads[2].details["shown_in_full"] == []


async def test_a_reveal_gives_the_full_id_with_a_reason_and_is_audited(api: Api) -> None:
    elder_id = await _elder(api)
    supervisor = await api.user(Role.SUPERVISOR)
    status, body = await _as(api, supervisor, "POST", f"/api/v1/elders/{elder_id}/reveal",
                             json={"reason": "民政核对身份", "fields": ["id_number"]})
    assert status == 200 and body == {"elder_id": elder_id, "id_number": FULL_ID}
    [entry] = await _entries(api, "elder.reveal")
    assert (entry.actor_id, entry.actor_label, entry.target_id, entry.source_ip) == (
        supervisor.id, supervisor.username, str(elder_id), "127.0.0.1")
    assert entry.details == {"justified_by": "none", "reason": "民政核对身份", "fields": ["id_number"]}

    for role in (Role.AGENT, Role.AUDITOR, Role.ADMIN):
        status, body = await api.request("POST", f"/api/v1/elders/{elder_id}/reveal", role=role,
                                         json={"reason": "回访核实", "fields": ["id_number"]})
        assert status == 200 and body["id_number"] == FULL_ID, role
    status, body = await api.request("POST", f"/api/v1/elders/{elder_id}/reveal", role=Role.PROVIDER,
                                     json={"reason": "回访核实", "fields": ["id_number"]})
    assert status == 403


async def test_a_reveal_without_a_good_reason_or_for_another_elders_call_is_422_and_not_audited(api: Api) -> None:
    elder_id = await _elder(api)
    other = await _elder(api, id_number=None, full_name="另一位", contacts=[])
    agent = await api.user(Role.AGENT)
    others_call = await _call(api, other, agent)
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "consultation", "elder_id": other, "description": "咨询助餐"})
    assert status == 201, order
    cases: list[tuple[dict[str, Any], str]] = [
        ({"fields": ["id_number"]}, "reason"),
        ({"reason": "看看", "fields": ["id_number"]}, "reason"),  # two characters
        ({"reason": "      ", "fields": ["id_number"]}, "reason"),
        ({"reason": "民政核对身份", "fields": []}, "fields"),
        ({"reason": "民政核对身份", "fields": ["address"]}, "fields.0"),
        ({"reason": "民政核对身份", "fields": ["id_number"], "call_id": others_call}, "call_id"),
        ({"reason": "民政核对身份", "fields": ["id_number"], "call_id": 999_999}, "call_id"),
        ({"reason": "民政核对身份", "fields": ["id_number"], "order_id": order["id"]}, "order_id"),
    ]
    for body, field in cases:
        status, answer = await api.request("POST", f"/api/v1/elders/{elder_id}/reveal", role=Role.SUPERVISOR,
                                           json=body)
        assert status == 422 and answer["error"]["field"] == field, (body, answer)
        assert FULL_ID not in json.dumps(answer)
    assert await _entries(api, "elder.reveal") == []


async def test_a_read_names_its_call_or_order_which_must_be_about_the_elder(api: Api) -> None:
    elder_id = await _elder(api)
    other = await _elder(api, id_number=None, full_name="另一位", contacts=[])
    agent = await api.user(Role.AGENT)
    ended = await _call(api, elder_id, agent, ended=True)
    others_call = await _call(api, other, agent)
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "consultation", "elder_id": elder_id, "description": "咨询助餐"})
    assert status == 201, order
    path = f"/api/v1/elders/{elder_id}"

    status, file = await _as(api, agent, "GET", path, params={"call_id": str(ended)})
    assert status == 200 and file["id_number"] == MASKED_ID  # named, but not live: masked
    status, _ = await _as(api, agent, "GET", path + "/contacts", params={"order_id": str(order["id"])})
    assert status == 200
    for params, field in (({"call_id": str(others_call)}, "call_id"), ({"call_id": "999999"}, "call_id"),
                          ({"order_id": "999999"}, "order_id"), ({"call_id": "x"}, "call_id")):
        for suffix in ("", "/contacts"):
            status, answer = await _as(api, agent, "GET", path + suffix, params=params)
            assert status == 422 and answer["error"]["field"] == field, (suffix, params, answer)

    [read] = await _entries(api, "elder.read")
    assert read.details == {"justified_by": "call", "call_id": ended, "shown_in_full": []}
    [contacts] = await _entries(api, "elder.contacts.read")
    assert contacts.details == {"justified_by": "order", "order_id": order["id"], "contacts": 2}
    assert (contacts.actor_id, contacts.target_id) == (agent.id, str(elder_id))


async def test_no_audit_entry_holds_an_id_number_or_health_data(api: Api) -> None:
    elder_id = await _elder(api)
    agent = await api.user(Role.AGENT)
    await _call(api, elder_id, agent)
    await _as(api, agent, "GET", f"/api/v1/elders/{elder_id}")
    await _as(api, agent, "GET", f"/api/v1/elders/{elder_id}/contacts")
    await _as(api, agent, "POST", f"/api/v1/elders/{elder_id}/reveal", json={"reason": "报120需核对身份",
                                                                          "fields": ["id_number"]})
    async with api.db.transaction() as session:
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action.startswith("elder."))))
    assert {e.action for e in entries} >= {"elder.read", "elder.contacts.read", "elder.reveal"}
    written = json.dumps([e.details for e in entries], ensure_ascii=False)
    for value in (FULL_ID, MASKED_ID, *ELDER["conditions"], *ELDER["medications"], *ELDER["allergies"]):
        assert value not in written, value


async def test_a_list_gives_summaries_with_masked_numbers_and_is_not_a_read_of_any_file(api: Api) -> None:
    await _elder(api)
    await _elder(api, id_number=None, phone="12349", birth_date=None, full_name="服务号老人", contacts=[])
    status, page = await api.request("GET", "/api/v1/elders", role=Role.AGENT)
    assert status == 200
    assert [(e["phone_masked"], e["id_number_masked"], e["birth_year"]) for e in page["items"]] == [
        ("177****0101", MASKED_ID, 1941), ("12349", None, None)]
    text = json.dumps(page, ensure_ascii=False)
    for value in ("示范市东城区", "高血压", "李建国", FULL_ID, "17700000101"):
        assert value not in text
    assert await _entries(api, "elder.read") == []
