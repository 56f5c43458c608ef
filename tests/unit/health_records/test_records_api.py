"""The health record over /api/v1 by role: examinations, visits, notes, assessments and plans written by agents
and supervisors; medical content read by them only (admins and auditors get who and when, masked); providers
refused; every read audited; bad input 422 naming the field with nothing written."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.elders.models import Elder
from callcenter.health_records.models import CapabilityAssessment, ChronicPlan, Examination
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.health_records.factory import answers_totalling, elder_with_doctor, full_marks

TODAY = dt.date.today()
EXAM = {"examined_on": "2026-11-20", "examiner": "王医生", "institution": "和平里社区卫生服务中心",
        "findings": {"systolic": 152, "diastolic": 94, "heart_rate": 78, "summary": "血压偏高，建议复查",
                     "abnormal": ["血压偏高"], "advice": "低盐饮食"}}


async def _ok(api: Api, method: str, path: str, role: Role = Role.AGENT, **kwargs: Any) -> Any:
    status, body = await api.request(method, path, role=role, **kwargs)
    assert 200 <= status < 300, (method, path, status, body)
    return body


async def _audit(api: Api, action: str) -> list[AuditEntry]:
    async with api.db.transaction(read_only=True) as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                           .order_by(AuditEntry.id))).all())


async def test_examinations_visits_and_notes_are_written_and_read_by_role(api: Api) -> None:
    elder_id = await elder_with_doctor(api.db)
    base = f"/api/v1/elders/{elder_id}"
    exam = await _ok(api, "POST", f"{base}/examinations", json=EXAM)
    assert exam["findings"]["systolic"] == 152 and exam["masked_fields"] == [] and exam["recorded_by"]
    await _ok(api, "POST", f"{base}/health-visits", role=Role.SUPERVISOR, json={
        "visited_on": "2026-11-25", "doctor": "李建国医生", "kind": "home", "notes": "血压控制尚可"})
    await _ok(api, "POST", f"{base}/doctor-notes", json={"written_on": "2026-11-25", "doctor": "李建国医生",
                                                          "note": "氨氯地平 5 mg 每日一次"})
    # Agents and supervisors, who care for the elder, read the content.
    seen = await _ok(api, "GET", f"{base}/examinations")
    assert seen["items"][0]["findings"]["summary"] == "血压偏高，建议复查"
    visits = await _ok(api, "GET", f"{base}/health-visits", role=Role.SUPERVISOR)
    assert visits["items"][0]["notes"] == "血压控制尚可" and visits["items"][0]["kind"] == "home"
    notes = await _ok(api, "GET", f"{base}/doctor-notes")
    assert notes["items"][0]["note"] == "氨氯地平 5 mg 每日一次"
    # Auditors and admins: who recorded what and when, not the findings.
    for role in (Role.AUDITOR, Role.ADMIN):
        masked = (await _ok(api, "GET", f"{base}/examinations", role=role))["items"][0]
        assert masked["findings"] is None and masked["masked_fields"] == ["findings"]
        assert (masked["examiner"], masked["examined_on"]) == ("王医生", "2026-11-20")
        masked_note = (await _ok(api, "GET", f"{base}/doctor-notes", role=role))["items"][0]
        assert masked_note["note"] is None and masked_note["masked_fields"] == ["note"]
    # A provider's account sees nothing medical; auditors write nothing.
    for path in ("examinations", "health-visits", "doctor-notes", "assessments", "chronic-plans"):
        assert (await api.request("GET", f"{base}/{path}", role=Role.PROVIDER))[0] == 403
    assert (await api.request("GET", "/api/v1/capability-assessment", role=Role.PROVIDER))[0] == 403
    assert (await api.request("POST", f"{base}/examinations", role=Role.AUDITOR, json=EXAM))[0] == 403
    assert (await api.request("GET", "/api/v1/elders/999999/examinations"))[0] == 404


async def test_every_read_is_audited_with_its_grounds_and_without_values(api: Api) -> None:
    elder_id = await elder_with_doctor(api.db)
    base = f"/api/v1/elders/{elder_id}"
    await _ok(api, "POST", f"{base}/examinations", json=EXAM)
    await _ok(api, "GET", f"{base}/examinations")
    await _ok(api, "GET", f"{base}/examinations", role=Role.AUDITOR)
    reads = await _audit(api, "health.examinations.read")
    assert [(entry.target_type, entry.target_id) for entry in reads] == [("elder", str(elder_id))] * 2
    assert reads[0].details == {"justified_by": "none", "rows": 1, "content_shown": True}
    assert reads[1].details["content_shown"] is False
    # A work order named as the reason must be about this elder (422 naming it, nothing read).
    status, body = await api.request("GET", f"{base}/examinations", role=Role.AGENT, params={"order_id": "999999"})
    assert status == 422 and body["error"]["field"] == "order_id"
    assert len(await _audit(api, "health.examinations.read")) == 2
    created = await _audit(api, "health.examination.create")
    assert created[0].details["fields"] == ["abnormal", "advice", "diastolic", "heart_rate", "summary", "systolic"]
    assert "152" not in str([entry.details for entry in (*reads, *created)])


async def test_bad_input_is_named_and_nothing_is_written(api: Api) -> None:
    elder_id = await elder_with_doctor(api.db)
    base = f"/api/v1/elders/{elder_id}"
    cases = [
        ("examinations", {**EXAM, "examined_on": (TODAY + dt.timedelta(days=2)).isoformat()}, "examined_on"),
        ("examinations", {**EXAM, "findings": {**EXAM["findings"], "systolic": 400}}, "findings.systolic"),
        ("examinations", {**EXAM, "findings": {"systolic": 120}}, "findings.summary"),
        ("health-visits", {"visited_on": "2026-11-25", "doctor": "李医生", "kind": "teleport"}, "kind"),
        ("health-visits", {"visited_on": "2026-11-25", "doctor": "李医生", "kind": "home", "plan_id": 999999},
         "plan_id"),
        ("doctor-notes", {"written_on": "2026-11-25", "doctor": "李医生", "note": "  "}, "note"),
        ("chronic-plans", {"conditions": [], "started_on": "2026-11-01"}, "conditions"),
        ("chronic-plans", {"conditions": ["gout_of_the_soul"], "started_on": "2026-11-01"}, "conditions.0"),
        ("chronic-plans", {"conditions": ["diabetes"], "started_on": "2026-11-01", "visit_interval_days": 0},
         "visit_interval_days"),
    ]
    for path, body, field in cases:
        status, answer = await api.request("POST", f"{base}/{path}", role=Role.AGENT, json=body)
        assert status == 422 and answer["error"]["field"] == field, (path, field, status, answer)
    assert await api.count(Examination) == 0 and await api.count(ChronicPlan) == 0


async def test_an_assessment_is_scored_by_the_platform_and_sets_the_care_level(api: Api) -> None:
    elder_id = await elder_with_doctor(api.db)
    base = f"/api/v1/elders/{elder_id}/assessments"
    standard = await _ok(api, "GET", "/api/v1/capability-assessment", role=Role.AUDITOR)
    assert standard["max_total"] == 90 and len(standard["items"]) == 26
    assert standard["levels"][1] == {"level": 1, "code": "mild", "min_total": 66, "max_total": 89}
    first = await _ok(api, "POST", base, json={"assessed_on": "2026-06-01", "assessor": "赵评估员",
                                                "second_assessor": "孙评估员", "reason": "first",
                                                "items": answers_totalling(70)})
    assert (first["total"], first["preliminary_level"], first["level"], first["grounds"], first["current"]) == (
        70, 1, 1, [], True)
    assert first["subtotals"]["self_care"] == 12 and first["items"]["eating"] == 0
    second = await _ok(api, "POST", base, role=Role.SUPERVISOR, json={
        "assessed_on": "2026-11-30", "assessor": "赵评估员", "reason": "immediate", "items": answers_totalling(50),
        "dementia": True, "risk_events": {"fall": 2}})
    assert (second["total"], second["preliminary_level"], second["level"], second["grounds"]) == (
        50, 2, 3, ["dementia", "risk_events"])
    # An older assessment entered late joins the history and leaves the care level to the latest.
    late = await _ok(api, "POST", base, json={"assessed_on": "2026-09-01", "assessor": "钱评估员",
                                               "items": full_marks()})
    assert (late["level"], late["current"]) == (0, False)
    history = await _ok(api, "GET", base)
    assert history["care_level"] == 3 and [item["assessed_on"] for item in history["items"]] == [
        "2026-11-30", "2026-09-01", "2026-06-01"]
    assert [item["current"] for item in history["items"]] == [True, False, False]
    async with api.db.transaction(read_only=True) as session:
        elder = await session.get(Elder, elder_id)
        assert elder is not None and elder.care_level == 3
    masked = (await _ok(api, "GET", base, role=Role.AUDITOR))["items"][0]
    assert (masked["level"], masked["total"], masked["items"]) == (3, None, None)
    assert set(masked["masked_fields"]) == {"items", "subtotals", "total", "preliminary_level", "grounds",
                                            "risk_events"}
    created = await _audit(api, "health.assessment.create")
    assert [entry.details["care_level_changed"] for entry in created] == [True, True, False]


async def test_every_bad_item_is_named_and_nothing_is_kept(api: Api) -> None:
    elder_id = await elder_with_doctor(api.db)
    base = f"/api/v1/elders/{elder_id}/assessments"
    body = {"assessed_on": "2026-11-30", "assessor": "赵评估员"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"items": {**full_marks(), "stairs": 4}}, "items.stairs"),
        ({"items": {**full_marks(), "aggression": 2}}, "items.aggression"),
        ({"items": {**full_marks(), "cooking": 3}}, "items.cooking"),
        ({"items": {**full_marks(), "memory": "4"}}, "items.memory"),  # a string is no score
        ({"items": {key: value for key, value in full_marks().items() if key != "hearing"}}, "items.hearing"),
        ({"items": full_marks(), "coma": True}, "coma"),
        ({"items": full_marks(), "risk_events": {"earthquake": 1}}, "risk_events.earthquake"),
        ({"items": full_marks(), "reason": "whim"}, "reason"),
        ({"items": full_marks(), "assessed_on": (TODAY + dt.timedelta(days=3)).isoformat()}, "assessed_on"),
    ]
    for change, field in cases:
        status, answer = await api.request("POST", base, role=Role.AGENT, json={**body, **change})
        assert status == 422 and answer["error"]["field"] == field, (field, status, answer)
    status, answer = await api.request("POST", base, role=Role.AGENT, json={
        **body, "items": {**full_marks(), "eating": 7, "vision": 3}})
    assert status == 422 and {detail["field"] for detail in answer["error"]["details"]} == {
        "items.eating", "items.vision"}
    assert await api.count(CapabilityAssessment) == 0
    async with api.db.transaction(read_only=True) as session:
        elder = await session.get(Elder, elder_id)
        assert elder is not None and elder.care_level is None


async def test_a_plan_moves_on_with_each_visit_and_changes_with_its_version(api: Api) -> None:
    elder_id = await elder_with_doctor(api.db)
    base = f"/api/v1/elders/{elder_id}"
    plan = await _ok(api, "POST", f"{base}/chronic-plans", json={
        "conditions": ["hypertension", "diabetes"], "started_on": "2026-09-01", "visit_interval_days": 90,
        "measurements": [{"measure": "blood_pressure", "every_days": 1, "times": "08:00 20:00"}],
        "targets": [{"measure": "systolic", "max": 140, "unit": "mmHg"}],
        "medications": [{"name": "氨氯地平片", "dose": "5 mg", "frequency": "每日一次"}]})
    assert (plan["next_visit_due"], plan["version"], plan["active"]) == ("2026-11-30", 1, True)
    assert plan["targets"] == [{"measure": "systolic", "max": 140.0, "unit": "mmHg"}]
    await _ok(api, "POST", f"{base}/health-visits", json={"visited_on": "2026-11-28", "doctor": "李建国医生",
                                                           "kind": "clinic", "plan_id": plan["id"]})
    moved = (await _ok(api, "GET", f"{base}/chronic-plans"))["items"][0]
    assert (moved["next_visit_due"], moved["version"]) == ("2027-02-26", 2)
    masked = (await _ok(api, "GET", f"{base}/chronic-plans", role=Role.AUDITOR))["items"][0]
    assert masked["conditions"] is None and masked["next_visit_due"] == "2027-02-26"
    status, body = await api.request("PATCH", f"{base}/chronic-plans/{plan['id']}", role=Role.AGENT,
                                     json={"version": 1, "visit_interval_days": 30})
    assert status == 409 and body["error"]["code"] == "stale_version"
    changed = await _ok(api, "PATCH", f"{base}/chronic-plans/{plan['id']}", json={
        "version": 2, "medications": [], "active": False})
    centre_today = dt.datetime.now(ZoneInfo(api.settings.timezone)).date()
    assert (changed["medications"], changed["active"], changed["ended_on"], changed["version"]) == (
        [], False, centre_today.isoformat(), 3)
    status, body = await api.request("PATCH", f"{base}/chronic-plans/{plan['id']}", role=Role.AGENT,
                                     json={"version": 3, "conditions": None})
    assert status == 422 and body["error"]["field"] == "conditions"
    # The next visit moved by hand (the JSON date through the strict body check); null is refused.
    moved_by_hand = await _ok(api, "PATCH", f"{base}/chronic-plans/{plan['id']}", json={
        "version": 3, "next_visit_due": "2027-03-01"})
    assert (moved_by_hand["next_visit_due"], moved_by_hand["version"]) == ("2027-03-01", 4)
    status, body = await api.request("PATCH", f"{base}/chronic-plans/{plan['id']}", role=Role.AGENT,
                                     json={"version": 4, "next_visit_due": None})
    assert status == 422 and body["error"]["field"] == "next_visit_due"
    assert (await api.request("PATCH", f"{base}/chronic-plans/999999", role=Role.AGENT, json={"version": 1}))[0] == 404
    updates = await _audit(api, "health.plan.update")
    assert updates[0].details == {"plan_id": plan["id"], "fields": ["active", "medications"]}


async def test_a_file_with_a_health_record_is_kept(api: Api) -> None:
    elder_id = await elder_with_doctor(api.db)
    await _ok(api, "POST", f"/api/v1/elders/{elder_id}/doctor-notes", json={
        "written_on": "2026-11-25", "doctor": "李建国医生", "note": "按时服药"})
    status, body = await api.request("DELETE", f"/api/v1/elders/{elder_id}", role=Role.SUPERVISOR)
    assert status == 409 and body["error"]["code"] == "elder_has_history" and "doctor's note" in body["error"][
        "message"]
