"""/api/v1/{calls,work-orders}/{id}/legal-hold: admins and auditors place, read and lift holds; audited."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind
from callcenter.recordings.storage import LocalRecordingStore
from callcenter.retention.engine import RetentionEngine, RetentionPolicy
from callcenter.retention.models import RetentionRule
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.retention.rig import CALL_LOG_FLOOR, NOW, RECORDING_FLOOR, Rig


def _rig(api: Api) -> Rig:
    return Rig(api.db, LocalRecordingStore(api.settings.recordings_dir), api.settings.data_dir.parent)


async def _audit(api: Api) -> list[AuditEntry]:
    async with api.db.transaction() as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.action.like("legal_hold.%"))
                                           .order_by(AuditEntry.id))).all())


async def test_an_auditor_places_reads_and_lifts_a_hold_on_a_call(api: Api) -> None:
    rig = _rig(api)
    call = await rig.call(ended=CALL_LOG_FLOOR - dt.timedelta(days=1))
    recording = await rig.recording(created=RECORDING_FLOOR - dt.timedelta(days=1), call_id=call)
    path = f"/api/v1/calls/{call}/legal-hold"

    status, body = await api.request("GET", path, role=Role.AUDITOR)
    assert status == 200 and body["legal_hold"] is False and body["reason"] is None
    status, body = await api.request("PUT", path, role=Role.AUDITOR, json={"reason": "  公安调查 2030-17 "})
    assert status == 200, body
    assert (body["target_type"], body["target_id"], body["legal_hold"], body["reason"]) == (
        "call", call, True, "公安调查 2030-17")
    assert body["held_by"].startswith("auditor-") and body["held_at"]
    assert (body["call_ids"], body["recording_ids"]) == ([call], [recording])
    status, detail = await api.request("GET", f"/api/v1/calls/{call}", role=Role.AGENT)
    assert status == 200 and detail["legal_hold"] is True and "legal_hold_reason" not in detail

    report = await RetentionEngine(api.db, rig.store, rig.policy()).run(NOW)
    assert report.rules[RetentionRule.RECORDING_EXPIRED].held == 1
    assert report.rules[RetentionRule.CALL_LOG_ARCHIVE].held == 1

    status, body = await api.request("DELETE", path, role=Role.ADMIN, params={"reason": "case closed"})
    assert status == 200 and body["legal_hold"] is False and body["held_by"] is None
    status, body = await api.request("DELETE", path, role=Role.ADMIN, params={"reason": "again"})
    assert status == 200 and body["legal_hold"] is False  # nothing to lift: nothing written
    entries = await _audit(api)
    assert [(e.action, e.target_type, e.target_id) for e in entries] == [
        ("legal_hold.set", "call", str(call)), ("legal_hold.cleared", "call", str(call))]
    assert entries[0].details["reason"] == "公安调查 2030-17" and entries[0].actor_label.startswith("auditor-")
    assert entries[1].details == {"reason": "case closed", "hold_reason": "公安调查 2030-17",
                                  "held_by": entries[0].actor_label, "held_at": entries[1].details["held_at"]}

    report = await RetentionEngine(api.db, rig.store, rig.policy()).run(NOW)
    assert report.rules[RetentionRule.CALL_LOG_ARCHIVE].archived == 1


async def test_a_hold_on_a_complaint_covers_the_calls_on_its_trail_and_is_on_the_trail(api: Api) -> None:
    rig = _rig(api)
    raised_from = await rig.call(ended=CALL_LOG_FLOOR - dt.timedelta(days=3))
    follow_up = await rig.call(ended=CALL_LOG_FLOOR - dt.timedelta(days=2))
    complaint = await rig.order(call_id=raised_from, kind=WorkOrderKind.COMPLAINT, mentions=(follow_up,))
    path = f"/api/v1/work-orders/{complaint}/legal-hold"

    status, body = await api.request("PUT", path, role=Role.AUDITOR, json={"reason": "complaint under review"})
    assert status == 200, body
    assert body["target_type"] == "work_order" and body["call_ids"] == [raised_from, follow_up]
    status, order = await api.request("GET", f"/api/v1/work-orders/{complaint}", role=Role.SUPERVISOR)
    assert status == 200 and order["legal_hold"] is True
    assert order["events"][-1]["action"] == "legal_hold_set"
    assert order["events"][-1]["details"]["reason"] == "complaint under review"

    report = await RetentionEngine(api.db, rig.store, rig.policy()).run(NOW)
    assert report.rules[RetentionRule.CALL_LOG_ARCHIVE].held == 2
    assert await rig.get(Call, raised_from) is not None and await rig.get(Call, follow_up) is not None

    status, body = await api.request("DELETE", path, role=Role.AUDITOR, params={"reason": "resolved"})
    assert status == 200 and body["legal_hold"] is False
    async with api.db.transaction() as session:
        actions = (await session.scalars(select(WorkOrderEvent.action).where(
            WorkOrderEvent.work_order_id == complaint).order_by(WorkOrderEvent.id))).all()
    assert actions[-2:] == ["legal_hold_set", "legal_hold_cleared"]
    assert (await rig.get(WorkOrder, complaint)).legal_hold is False


async def test_only_admins_and_auditors_may_and_a_reason_is_required(api: Api) -> None:
    rig = _rig(api)
    call = await rig.call(ended=NOW)
    path = f"/api/v1/calls/{call}/legal-hold"
    for role in (Role.AGENT, Role.SUPERVISOR, Role.PROVIDER):
        for method in ("GET", "PUT", "DELETE"):
            status, _ = await api.request(method, path, role=role, json={"reason": "x"}, params={"reason": "x"})
            assert status == 403, (role, method)
    status, _ = await api.request("PUT", path, role=None, json={"reason": "x"})
    assert status == 401
    for payload in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": "a\nb"}):
        status, body = await api.request("PUT", path, role=Role.AUDITOR, json=payload)
        assert status == 422 and body["error"]["field"] == "reason", payload
    status, body = await api.request("DELETE", path, role=Role.AUDITOR)
    assert status == 422 and body["error"]["field"] == "reason"
    status, body = await api.request("PUT", "/api/v1/calls/999999/legal-hold", role=Role.AUDITOR,
                                     json={"reason": "x"})
    assert status == 404 and body["error"]["field"] == "id"
    status, _ = await api.request("PUT", "/api/v1/work-orders/999999/legal-hold", role=Role.ADMIN,
                                  json={"reason": "x"})
    assert status == 404
    assert await _audit(api) == [] and (await rig.get(Call, call)).legal_hold is False


async def test_the_call_log_shows_a_recording_whose_audio_retention_deleted(api: Api) -> None:
    rig = _rig(api)
    call = await rig.call(ended=RECORDING_FLOOR - dt.timedelta(days=2))
    recording = await rig.recording(created=RECORDING_FLOOR - dt.timedelta(days=1), call_id=call)
    await RetentionEngine(api.db, rig.store, RetentionPolicy(
        recording_days=92, call_log_days=1095, call_log_expiry="archive", archive_dir=rig.tmp_path / "archive",
        lock_file=rig.tmp_path / "lock")).run(NOW)

    status, detail = await api.request("GET", f"/api/v1/calls/{call}", role=Role.AUDITOR)
    assert status == 200
    [shown] = detail["recordings"]
    assert shown["id"] == recording and shown["deleted_at"] == NOW.isoformat().replace("+00:00", "Z")
    status, _ = await api.request("GET", f"/api/v1/recordings/{recording}", role=Role.AUDITOR)
    assert status == 404  # its audio is gone: the recordings API no longer offers it
