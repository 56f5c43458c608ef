"""The outbound engine against real Asterisk: jobs queued in the database are dialled through the trunk (SIPp
people), the answered one hears the script and presses a key as RFC 2833 DTMF, the unanswered one fails after its
attempts; every call is in the call log with its purpose, recorded, and in the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.db.session import Database
from callcenter.outbound.models import JobState, OutboundAttempt, OutboundJob, OutboundPurpose
from callcenter.outbound.services import enqueue
from tests import harness

ACCEPTS, SILENT = "13900000001", "13900000009"
CASCADE_SCRIPT = {"prompts": ["outbound-cascade-intro", "cascade-what-fall", "outbound-cascade-keys"],
                  "choices": {"1": "accept", "2": "decline", "3": "agent"},
                  "replies": {"1": ["outbound-cascade-accepted"], "2": ["outbound-cascade-declined"]},
                  "agent_keys": ["3"], "agent_queue": "emergency", "no_key_prompts": ["outbound-no-key"]}


def _queue(stack: harness.Stack, number: str, elder_id: int) -> int:
    async def run(db: Database) -> int:
        async with db.transaction() as session:
            job = await enqueue(session, purpose=OutboundPurpose.CASCADE, owner="test", owner_ref=None,
                                target=number, script=CASCADE_SCRIPT, created_by="test", elder_id=elder_id,
                                ring_seconds=10)
            return job.id

    return stack.query(run)  # type: ignore[no-any-return]


def _job(stack: harness.Stack, job_id: int) -> dict[str, Any]:
    async def run(db: Database) -> dict[str, Any]:
        async with db.transaction(read_only=True) as session:
            job = await session.get(OutboundJob, job_id)
            assert job is not None
            attempts = (await session.scalars(select(OutboundAttempt).where(
                OutboundAttempt.job_id == job_id).order_by(OutboundAttempt.id))).all()
            return {"state": job.state, "outcome": job.outcome, "digit": job.digit,
                    "attempts": [(a.state.value, a.digit, a.choice, a.call_id) for a in attempts]}

    return stack.query(run)  # type: ignore[no-any-return]


def test_an_answered_call_takes_a_key_and_an_unanswered_one_fails_each_logged_and_recorded(
        stack: harness.Stack, sipp_dir: Path) -> None:
    elder_id = stack.seeded.elder_id  # type: ignore[attr-defined]
    people = harness.TrunkResponders(stack, sipp_dir / "responders")
    people.answer_calls(2, listen_ms=2500, timeout=60)
    accepting = _queue(stack, ACCEPTS, elder_id)
    silent = _queue(stack, SILENT, elder_id)
    done = harness.eventually(lambda: (job := _job(stack, accepting))["state"] is JobState.DONE and job,
                              timeout=40, what="the accepting responder's key")
    assert (done["outcome"], done["digit"]) == ("accept", "1"), done
    assert [a[:3] for a in done["attempts"]] == [("completed", "1", "accept")]
    failed = harness.eventually(lambda: (job := _job(stack, silent))["state"] is JobState.FAILED and job,
                                timeout=40, what="the silent responder's call to end unanswered")
    assert [a[:2] for a in failed["attempts"]] == [("no_answer", None)], failed
    assert people.wait(30).ok, people.errors()
    assert sorted(number for number, _ in people.invites()) == [ACCEPTS, SILENT]
    assert {caller for _, caller in people.invites()} == {stack.settings.centre_number}

    admin = stack.token()
    status, call = stack.api("GET", f"/api/v1/calls/{done['attempts'][0][3]}", token=admin)
    assert status == 200, call
    assert (call["kind"], call["purpose"], call["callee_number"]) == ("outbound", "cascade", ACCEPTS)
    assert call["answered_at"] is not None
    recordings = harness.eventually(lambda: stack.api("GET", f"/api/v1/calls/{call['id']}", token=admin)[1][
        "recordings"], timeout=30, what="the outbound call's recording")
    assert recordings[0]["serial_number"].startswith("OB-")
    status, unanswered = stack.api("GET", f"/api/v1/calls/{failed['attempts'][0][3]}", token=admin)
    assert status == 200 and unanswered["disposition"] == "no_answer", unanswered
    status, listed = stack.api("GET", "/api/v1/outbound-jobs?purpose=cascade", token=admin)
    assert status == 200, listed
    assert {job["id"]: job["state"] for job in listed["items"]} == {accepting: "done", silent: "failed"}
    status, audit = stack.api("GET", "/api/v1/audit?action=dial.outbound", token=admin)
    assert sorted(a["details"]["number"] for a in audit["items"] if a["details"]["purpose"] == "cascade") == [
        ACCEPTS, SILENT]
