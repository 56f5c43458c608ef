"""/api/v1/outbound-jobs: the queue as supervisors and agents see it, and a supervisor stopping a job (audited)."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.outbound.models import OutboundPurpose
from callcenter.outbound.services import enqueue
from callcenter.users.models import Role
from tests.apiclient import Api


async def test_the_queue_is_listed_and_a_supervisor_stops_a_job_audited(api: Api) -> None:
    async with api.db.transaction() as session:
        job = await enqueue(session, purpose=OutboundPurpose.CARE_CALL, owner="care_calls", owner_ref=7,
                            target="13800138000", script={"prompts": ["outbound-checkin"], "choices": {"1": "well"}},
                            created_by="test", window=("09:00", "11:00"))
        job_id = job.id
    status, listed = await api.request("GET", "/api/v1/outbound-jobs?purpose=care_call&state=queued",
                                       role=Role.AGENT)
    assert status == 200, listed
    assert [(j["id"], j["state"], j["window_start"], j["attempt_log"]) for j in listed["items"]] == [
        (job_id, "queued", "09:00", [])]
    assert "target" not in listed["items"][0]  # the number is on the call and in the audit log, not here
    status, body = await api.request("GET", "/api/v1/outbound-jobs?purpose=nothing", role=Role.AGENT)
    assert status == 422 and body["error"]["field"] == "purpose", body

    status, _ = await api.request("POST", f"/api/v1/outbound-jobs/{job_id}/cancel", role=Role.AGENT,
                                  json={"reason": "家属要求暂停"})
    assert status == 403
    status, cancelled = await api.request("POST", f"/api/v1/outbound-jobs/{job_id}/cancel", role=Role.SUPERVISOR,
                                          json={"reason": "家属要求暂停"})
    assert status == 200 and cancelled["state"] == "cancelled", cancelled
    status, missing = await api.request("POST", "/api/v1/outbound-jobs/999999/cancel", role=Role.SUPERVISOR,
                                        json={"reason": "x"})
    assert status == 404 and missing["error"]["field"] == "id", missing
    async with api.db.transaction(read_only=True) as session:
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "outbound.cancelled"))).all()
    assert [(a.target_id, a.details) for a in audit] == [
        (str(job_id), {"purpose": "care_call", "reason": "家属要求暂停"})]
