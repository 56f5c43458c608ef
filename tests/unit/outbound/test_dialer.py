"""The outbound dialer's rounds against a scripted AMI (the transport boundary): what starts and in what order,
the channel reserve, quiet hours, retries, a dial in flight when the link drops, and the key pressed.
The same engine against the real Asterisk and SIPp is tests/integration/test_outbound.py."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Invalid
from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.outbound.models import AttemptState, JobState, OutboundAttempt, OutboundJob, OutboundPurpose
from callcenter.outbound.services import AttemptEnded, OutboundDialer, enqueue
from callcenter.telephony.ami import AmiConnectionLost, AmiEvent
from tests.unit.outbound.ami import ScriptedAmi

ASK = {"prompts": ["outbound-checkin"], "choices": {"1": "well", "2": "call_back", "0": "agent"},
       "agent_keys": ["0"]}


ANSWERED = AmiEvent({"Event": "OriginateResponse", "Response": "Success"})


async def _until(condition: Callable[[], bool]) -> None:
    """Let the dialer's tasks run until ``condition`` holds (at most 2 s)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def _dialer(db: Database, settings: Settings, ami: ScriptedAmi, clock: Callable[[], dt.datetime] = utcnow,
            **changes: object) -> OutboundDialer:
    return OutboundDialer(db, ami, settings.replace(**changes), clock=clock)  # type: ignore[arg-type]


async def _queue(db: Database, purpose: OutboundPurpose, number: str, **options: Any) -> int:
    async with db.transaction() as session:
        job = await enqueue(session, purpose=purpose, owner="test", owner_ref=None, target=number, script=ASK,
                            created_by="test", **options)
        return job.id


async def _job(db: Database, job_id: int) -> OutboundJob:
    async with db.transaction(read_only=True) as session:
        job = await session.get(OutboundJob, job_id)
        assert job is not None
        return job


async def _attempts(db: Database, job_id: int) -> list[OutboundAttempt]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(OutboundAttempt).where(
            OutboundAttempt.job_id == job_id).order_by(OutboundAttempt.id))).all())


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_queued(db: Database) -> None:
    cases = [({"target": ""}, "phone", "no phone number"), ({"target": "13x00"}, "phone", "not a dialable"),
             ({"window": ("25:00", "09:00")}, "window", "not a time of day"),
             ({"window": ("09:00", "09:00")}, "window", "empty"),
             ({"script": {"prompts": []}}, "script", "script is invalid"),
             ({"script": {"prompts": ["no-such-prompt"]}, "known_prompts": frozenset({"outbound-checkin"})},
              "script", "no such prompt"),
             ({"expires_at": utcnow() - dt.timedelta(minutes=1)}, "expires_at", "expire before")]
    for changes, field, message in cases:
        arguments: dict[str, Any] = {"purpose": OutboundPurpose.CARE_CALL, "owner": "test", "owner_ref": None,
                                     "target": "13800138000", "script": ASK, "created_by": "test", **changes}
        with pytest.raises(Invalid, match=message) as refused:
            async with db.transaction() as session:
                await enqueue(session, **arguments)
        assert refused.value.field == field
    async with db.transaction(read_only=True) as session:
        assert (await session.scalars(select(OutboundJob))).all() == []


async def test_priority_caps_and_the_channels_kept_for_inbound_sos(db: Database, settings: Settings) -> None:
    ami = ScriptedAmi()
    dialer = _dialer(db, settings, ami, outbound_channels=5, outbound_reserved_channels=2,
                     outbound_concurrency="care_call=2,cascade=3", outbound_quiet_hours="none")
    care = [await _queue(db, OutboundPurpose.CARE_CALL, f"1380013800{n}") for n in range(4)]
    cascade = await _queue(db, OutboundPurpose.CASCADE, "13900139000")
    for number in ("13800138000", "13800138001", "13800138002", "13800138003", "13900139000"):
        ami.held[number] = asyncio.Event()
    # One inbound hotline call talking: 5 channels - 1 inbound - 2 kept free = 2 outbound at once.
    async with db.transaction() as session:
        session.add(Call(linkedid="in-1", kind=CallKind.HOTLINE, started_at=utcnow(), agent_id=None))
    await dialer.run_round()
    await asyncio.sleep(0)
    assert ami.dialled() == ["13900139000", "13800138000"]  # the cascade first, then by age
    assert (await _job(db, care[1])).state is JobState.QUEUED
    # An SOS arrives and waits for an agent: with it and the hotline call, no channel is left for outbound work.
    async with db.transaction() as session:
        session.add(Call(linkedid="sos-1", kind=CallKind.SOS, started_at=utcnow()))
    ami.outcomes["13800138000"] = AmiEvent({"Event": "OriginateResponse", "Response": "Failure", "Reason": "5"})
    ami.held["13800138000"].set()
    await _until(lambda: dialer.dialling == 1)
    second_cascade = await _queue(db, OutboundPurpose.CASCADE, "13900139001")
    await dialer.run_round()
    await asyncio.sleep(0)
    assert ami.dialled() == ["13900139000", "13800138000"], "the reserve is kept for inbound calls"
    # The hotline call ends: one channel again, and with the SOS still waiting only emergency work may take it.
    async with db.transaction() as session:
        hotline = await session.scalar(select(Call).where(Call.linkedid == "in-1"))
        assert hotline is not None
        hotline.ended_at = utcnow()
    await dialer.run_round()
    await asyncio.sleep(0)
    assert ami.dialled() == ["13900139000", "13800138000", "13900139001"]
    for event in ami.held.values():
        event.set()
    await dialer.drain()
    assert (await _job(db, cascade)).state is JobState.FAILED  # no answer, one attempt
    assert (await _job(db, second_cascade)).state is JobState.FAILED
    call = (await _attempts(db, care[0]))[0]
    async with db.transaction(read_only=True) as session:
        logged = await session.get(Call, call.call_id)
        assert logged is not None
        assert (logged.kind, logged.purpose, logged.disposition) == (CallKind.OUTBOUND, "care_call", Disposition.BUSY)
        assert logged.ended_at is not None
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "dial.outbound"))).all()
    assert sorted(a.details["purpose"] for a in audit) == ["care_call", "cascade", "cascade"]


async def test_quiet_hours_hold_care_calls_but_never_a_cascade(db: Database, settings: Settings) -> None:
    zone = ZoneInfo(settings.timezone)
    local = utcnow().astimezone(zone)
    night = local.replace(hour=23, minute=0, second=0, microsecond=0)
    night = night if night > local else night + dt.timedelta(days=1)
    ami = ScriptedAmi()
    dialer = _dialer(db, settings, ami, clock=lambda: night.astimezone(dt.UTC), outbound_quiet_hours="21:00-08:00")
    care = await _queue(db, OutboundPurpose.CARE_CALL, "13800138000")
    cascade = await _queue(db, OutboundPurpose.CASCADE, "13900139000")
    await dialer.run_round()
    await dialer.drain()
    assert ami.dialled() == ["13900139000"]
    held = await _job(db, care)
    assert held.state is JobState.QUEUED
    assert held.next_attempt_at.astimezone(zone) == (night + dt.timedelta(days=1)).replace(hour=8)
    assert (await _job(db, cascade)).attempts == 1


async def test_unanswered_calls_are_retried_with_backoff_then_fail_and_the_owner_hears_each(
        db: Database, settings: Settings) -> None:
    now = [utcnow() + dt.timedelta(seconds=1)]  # after the job is queued
    ami = ScriptedAmi()
    dialer = _dialer(db, settings, ami, clock=lambda: now[0], outbound_quiet_hours="none")
    heard: list[tuple[int, str, str]] = []

    async def owner(_session: AsyncSession, ended: AttemptEnded) -> None:
        heard.append((ended.attempt, ended.attempt_state.value, ended.job_state.value))

    dialer.on_attempt_ended("test", owner)
    job_id = await _queue(db, OutboundPurpose.CARE_CALL, "13800138000", max_attempts=3, retry_seconds=900)
    await dialer.run_round()
    await dialer.drain()
    job = await _job(db, job_id)
    assert (job.state, job.attempts) == (JobState.QUEUED, 1)
    assert (job.next_attempt_at - now[0]).total_seconds() == pytest.approx(900, abs=1)
    await dialer.run_round()
    await dialer.drain()
    assert len(ami.sent) == 1, "not before its retry time"
    for _ in range(2):
        now[0] += dt.timedelta(seconds=901)
        await dialer.run_round()
        await dialer.drain()
    assert len(ami.sent) == 3
    assert (await _job(db, job_id)).state is JobState.FAILED
    assert heard == [(1, "no_answer", "queued"), (2, "no_answer", "queued"), (3, "no_answer", "failed")]


async def test_a_dial_in_flight_when_the_link_drops_is_settled_from_the_call_log_never_redialled(
        db: Database, settings: Settings) -> None:
    ami = ScriptedAmi()
    dialer = _dialer(db, settings, ami, outbound_quiet_hours="none")
    rang = await _queue(db, OutboundPurpose.CASCADE, "13900139000", max_attempts=2, retry_seconds=0)
    never = await _queue(db, OutboundPurpose.CASCADE, "13900139001", max_attempts=2, retry_seconds=0)
    ami.outcomes["13900139000"] = AmiConnectionLost("link dropped")
    ami.outcomes["13900139001"] = AmiConnectionLost("link dropped")
    await dialer.run_round()
    await dialer.drain()
    assert [a.state for a in await _attempts(db, rang)] == [AttemptState.UNCERTAIN]
    # Rounds go on while the link is down or before the call log caught up: nothing is dialled again.
    ami.connected = False
    await dialer.run_round()
    ami.connected = True
    await dialer.run_round()
    await dialer.drain()
    assert len(ami.sent) == 2
    # The call log caught up: the first rang (a leg, answered, ended), the second never reached Asterisk.
    first = (await _attempts(db, rang))[0]
    async with db.transaction() as session:
        call = await session.get(Call, first.call_id)
        assert call is not None
        session.add(CallLeg(call_id=call.id, uniqueid=first.channel_id, channel="PJSIP/trunk-00000001",
                            started_at=utcnow(), answered_at=utcnow(), ended_at=utcnow()))
        call.ended_at, call.disposition = utcnow(), Disposition.ANSWERED
    await dialer.caught_up()
    await dialer.run_round()
    await dialer.drain()
    assert [a.state for a in await _attempts(db, rang)] == [AttemptState.COMPLETED]
    assert (await _job(db, rang)).state is JobState.DONE
    settled = await _attempts(db, never)
    assert settled[0].state is AttemptState.NEVER_RANG
    # Only the one that never rang is dialled again (its second attempt).
    assert ami.dialled() == ["13900139000", "13900139001", "13900139001"]


async def test_a_restart_with_a_dial_in_flight_makes_it_uncertain(db: Database, settings: Settings) -> None:
    ami = ScriptedAmi()
    ami.held["13900139000"] = asyncio.Event()
    dialer = _dialer(db, settings, ami, outbound_quiet_hours="none")
    job_id = await _queue(db, OutboundPurpose.CASCADE, "13900139000")
    await dialer.run_round()
    await asyncio.sleep(0)
    await dialer.stop()  # the platform goes away with the Originate in flight
    restarted = _dialer(db, settings, ScriptedAmi(), outbound_quiet_hours="none")
    await restarted.start()
    await restarted.stop()
    assert [a.state for a in await _attempts(db, job_id)] == [AttemptState.UNCERTAIN]


async def test_the_key_pressed_is_stored_at_once_and_the_job_done_when_the_call_ends(
        db: Database, settings: Settings) -> None:
    ami = ScriptedAmi()
    ami.outcomes["13800138000"] = ANSWERED
    dialer = _dialer(db, settings, ami, outbound_quiet_hours="none")
    pressed: list[str | None] = []

    async def on_key(_session: AsyncSession, job: OutboundJob, attempt: OutboundAttempt) -> None:
        pressed.append(attempt.choice)

    dialer.on_key("test", on_key)
    job_id = await _queue(db, OutboundPurpose.CARE_CALL, "13800138000")
    await dialer.run_round()
    await dialer.drain()
    attempt = (await _attempts(db, job_id))[0]
    assert attempt.state is AttemptState.ANSWERED
    found = await dialer.script_for(attempt.id)
    assert found is not None and found[1].choices["2"] == "call_back"
    assert await dialer.record_key(attempt.id, "2") == "call_back"
    assert pressed == ["call_back"]
    async with db.transaction() as session:
        call = await session.get(Call, attempt.call_id)
        assert call is not None
        call.ended_at, call.disposition = utcnow(), Disposition.ANSWERED
    await dialer.run_round()
    job = await _job(db, job_id)
    assert (job.state, job.outcome, job.digit) == (JobState.DONE, "call_back", "2")


async def test_an_owner_that_fails_loses_only_its_own_writes(db: Database, settings: Settings) -> None:
    ami = ScriptedAmi()
    dialer = _dialer(db, settings, ami, outbound_quiet_hours="none")

    async def broken(session: AsyncSession, ended: AttemptEnded) -> None:
        session.add(Call(linkedid=f"owner-write-{ended.job_id}", kind=CallKind.OTHER, started_at=utcnow()))
        await session.flush()
        raise RuntimeError("a bug in the owner")

    dialer.on_attempt_ended("test", broken)
    job_id = await _queue(db, OutboundPurpose.CASCADE, "13900139000")
    await dialer.run_round()
    await dialer.drain()
    assert (await _job(db, job_id)).state is JobState.FAILED  # the engine's record stands
    assert [a.state for a in await _attempts(db, job_id)] == [AttemptState.NO_ANSWER]
    async with db.transaction(read_only=True) as session:
        assert await session.scalar(select(Call).where(Call.linkedid == f"owner-write-{job_id}")) is None


async def test_an_outcome_that_could_not_be_stored_is_settled_later_never_dialled_blind(
        db: Database, settings: Settings) -> None:
    now = [utcnow() + dt.timedelta(seconds=1)]
    ami = ScriptedAmi()

    class Flaky(OutboundDialer):
        failures = 1

        async def _attempt_over(self, attempt_id: int, state: AttemptState, reason: str | None) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("the database went away")
            await super()._attempt_over(attempt_id, state, reason)

    dialer = Flaky(db, ami, settings.replace(outbound_quiet_hours="none"), clock=lambda: now[0])  # type: ignore[arg-type]
    job_id = await _queue(db, OutboundPurpose.CASCADE, "13900139000", max_attempts=2, retry_seconds=0)
    await dialer.run_round()
    await dialer.drain()  # no answer, but storing that failed
    assert [a.state for a in await _attempts(db, job_id)] == [AttemptState.DIALLING]
    await dialer.run_round()
    assert len(ami.sent) == 1, "nothing is dialled while the first dial's fate is unknown"
    now[0] += dt.timedelta(seconds=30 + 15 + 16)  # past its ring time: uncertain
    await dialer.run_round()
    assert [a.state for a in await _attempts(db, job_id)] == [AttemptState.UNCERTAIN]
    now[0] += dt.timedelta(seconds=60)  # long gone, and the call log has no channel of it: it never rang
    await dialer.run_round()
    await dialer.drain()
    assert (await _attempts(db, job_id))[0].state is AttemptState.NEVER_RANG
    assert len(ami.sent) == 2
