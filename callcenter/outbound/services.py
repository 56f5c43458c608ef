"""The outbound dialer: one engine for every call the centre places by itself (issue 16).

**Jobs.** A domain asks for a call with ``enqueue`` inside its own transaction (the job commits with the change
that needs it: a cascade step, a check-in of today). Jobs wait in ``outbound_jobs`` by priority; a round every
second (and at once when a job is queued or a call ends) starts the due ones that fit.

**What fits.** A job is due at ``next_attempt_at``, inside its own time window and, for care calls and reminders,
outside the quiet hours (the centre's time zone). It starts only within two limits: its purpose's concurrency cap
(CC_OUTBOUND_CONCURRENCY) and the channel budget — CC_OUTBOUND_CHANNELS less the inbound calls in progress, less
CC_OUTBOUND_RESERVED_CHANNELS kept free for the next SOS — so outbound work never takes what an inbound SOS needs.
While an SOS waits for an agent, only cascades and help-is-coming messages start (they are part of some
emergency); care calls, reminders and call-backs wait. The engine's calls are automated (a script over FastAGI):
they take no agent unless the called person presses the key that asks for one, and then they queue behind every
SOS (the emergency queue's weight).

**Attempts.** Each dial is an ``OutboundAttempt`` whose channel id (the Originate's ``ChannelId``, so the call's
linkedid) is committed, with the call-log row of its purpose and the ``dial.outbound`` audit entry, before the
Originate is sent. Answered, the script runs (``outbound.agi``) and writes the key pressed on the attempt; when the
call ends the job is done. Not answered, the job is retried after its backoff until its attempts are used up.
**Never dialled twice**: when the AMI link drops (or the platform dies) with an Originate in flight, the attempt is
uncertain and is settled from the call log once it has caught up with Asterisk — the channel answered → the call
happened; rang unanswered → a retry as usual; no channel at all → it never rang — exactly as the SOS call-backs.

**Owners.** Each job names the domain that asked (``owner``) and its own reference; that domain's handler
(``on_attempt_ended``) hears of every attempt's end and of the job's, and decides what follows (the next
responder of a cascade, a work order for a missed check-in).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.services import DialBasis, DialPurpose, record_dial
from callcenter.logs import get_logger
from callcenter.outbound.models import (
    IN_FLIGHT,
    OPEN_JOB_STATES,
    AttemptState,
    JobState,
    OutboundAttempt,
    OutboundJob,
    OutboundPurpose,
)
from callcenter.outbound.policy import DailyWindow, next_allowed, outbound_budget, parse_quiet_hours, retry_delay
from callcenter.outbound.script import Script
from callcenter.periodic import PeriodicJob
from callcenter.telephony.ami import AmiClient, AmiConnectionLost, AmiError, AmiTimeout
from callcenter.telephony.originate import RESPONSE_GRACE_SECONDS, Originate, OriginateReason, originate

log = get_logger(__name__)

CONTEXT = "cc-outbound"
# The Originate's ChannelId (and so the call's linkedid) starts with this: the engine's calls are told apart.
CHANNEL_PREFIX = "cco"
ROUND_SECONDS = 1.0
# Purposes that are part of an emergency: they start while an SOS waits, and quiet hours never hold them.
EMERGENCY_PURPOSES = frozenset({OutboundPurpose.CASCADE, OutboundPurpose.NOTIFICATION})
DEFAULT_PRIORITY: Mapping[OutboundPurpose, int] = {
    OutboundPurpose.CASCADE: 10, OutboundPurpose.NOTIFICATION: 20, OutboundPurpose.CALLBACK: 30,
    OutboundPurpose.CARE_CALL: 50, OutboundPurpose.REMINDER: 60,
}
QUIET_PURPOSES = frozenset({OutboundPurpose.CARE_CALL, OutboundPurpose.REMINDER})
CALLER_NAMES: Mapping[OutboundPurpose, str] = {
    OutboundPurpose.CASCADE: "养老服务中心紧急联络", OutboundPurpose.NOTIFICATION: "养老服务中心",
    OutboundPurpose.CALLBACK: "养老服务中心回电", OutboundPurpose.CARE_CALL: "养老服务中心关爱电话",
    OutboundPurpose.REMINDER: "养老服务中心提醒",
}
_DIAL_PURPOSES: Mapping[OutboundPurpose, DialPurpose] = {
    OutboundPurpose.CASCADE: DialPurpose.CASCADE, OutboundPurpose.NOTIFICATION: DialPurpose.NOTIFICATION,
    OutboundPurpose.CALLBACK: DialPurpose.OUTBOUND_CALLBACK, OutboundPurpose.CARE_CALL: DialPurpose.CARE_CALL,
    OutboundPurpose.REMINDER: DialPurpose.REMINDER,
}
_NUMBER = re.compile(r"^[0-9]{3,20}$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ATTEMPT_ENDS = {OriginateReason.NO_ANSWER: AttemptState.NO_ANSWER, OriginateReason.BUSY: AttemptState.BUSY}
_CALL_ENDS = {AttemptState.NO_ANSWER: Disposition.NO_ANSWER, AttemptState.BUSY: Disposition.BUSY}


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptEnded:
    """What an owner hears when one of its jobs' attempts ends: the attempt, and the job's state after it
    (``queued`` again for a retry, or final: done, failed, expired, cancelled)."""

    job_id: int
    owner_ref: int | None
    purpose: OutboundPurpose
    attempt: int
    attempt_state: AttemptState
    job_state: JobState
    digit: str | None
    choice: str | None
    digit_at: dt.datetime | None
    call_id: int | None
    reason: str | None

    @property
    def final(self) -> bool:
        return self.job_state not in OPEN_JOB_STATES


OwnerHandler = Callable[[AsyncSession, AttemptEnded], Awaitable[None]]
# Told the moment a key is pressed (a responder accepting), in the transaction that stores it.
KeyHandler = Callable[[AsyncSession, OutboundJob, OutboundAttempt], Awaitable[None]]


def dialable(target: str, *, via_trunk: bool, field: str = "phone") -> str:
    """The target as it is dialled: digits for the trunk, an endpoint name for a device; ``Invalid`` naming
    ``field`` otherwise (a responder without a number, a number with letters)."""
    value = (target or "").strip()
    if via_trunk:
        value = value.lstrip("+")
        if not value:
            raise Invalid("no phone number to call: add one first", field=field)
        if not _NUMBER.fullmatch(value):
            raise Invalid(f"{value!r} is not a dialable number (3 to 20 digits)", field=field)
    elif not _ENDPOINT.fullmatch(value):
        raise Invalid(f"{value!r} is not a device's SIP endpoint", field=field)
    return value


async def enqueue(session: AsyncSession, *, purpose: OutboundPurpose, owner: str, owner_ref: int | None,
                  target: str, script: Script | Mapping[str, Any], created_by: str, via_trunk: bool = True,
                  elder_id: int | None = None, alarm_id: int | None = None, work_order_id: int | None = None,
                  language: str = "zh-CN", priority: int | None = None, max_attempts: int = 1,
                  retry_seconds: int = 300, retry_factor: float = 1.0, ring_seconds: int = 30,
                  window: tuple[str, str] | None = None, not_before: dt.datetime | None = None,
                  expires_at: dt.datetime | None = None, known_prompts: frozenset[str] | None = None,
                  target_field: str = "phone", dial_basis: DialBasis = DialBasis.CONTACT) -> OutboundJob:
    """Queue one call in the caller's transaction; ``Invalid`` naming the field for anything that could not be
    dialled or played (nothing is stored then). The dialer picks it up when the transaction commits."""
    number = dialable(target, via_trunk=via_trunk, field=target_field)
    try:
        parsed = script if isinstance(script, Script) else Script.model_validate(script)
    except ValidationError as error:
        raise Invalid(f"the call's script is invalid: {error.errors()[0]['msg']}", field="script") from None
    if known_prompts is not None and (missing := sorted(parsed.prompt_ids() - known_prompts)):
        raise Invalid(f"no such prompt: {', '.join(missing)} (ivr_flows/prompts.yaml)", field="script")
    if not 1 <= max_attempts <= 10:
        raise Invalid("between 1 and 10 attempts", field="max_attempts")
    if not 10 <= ring_seconds <= 120:
        raise Invalid("rings between 10 and 120 seconds", field="ring_seconds")
    if retry_seconds < 0 or retry_factor < 1:
        raise Invalid("a retry interval of 0 s or more and a factor of 1 or more", field="retry_seconds")
    if window is not None:
        try:
            DailyWindow.parse(*window, field="window")
        except ValueError as error:
            raise Invalid(str(error), field="window") from None
    now = utcnow()
    if expires_at is not None and expires_at <= (not_before or now):
        raise Invalid("the call would expire before it could be made", field="expires_at")
    job = OutboundJob(
        purpose=purpose, priority=DEFAULT_PRIORITY[purpose] if priority is None else priority, state=JobState.QUEUED,
        owner=owner, owner_ref=owner_ref, target=number, via_trunk=via_trunk, dial_basis=dial_basis.value,
        elder_id=elder_id, alarm_id=alarm_id,
        work_order_id=work_order_id, language=language, script=parsed.model_dump(mode="json"),
        ring_seconds=ring_seconds, max_attempts=max_attempts, retry_seconds=retry_seconds, retry_factor=retry_factor,
        quiet_hours=purpose in QUIET_PURPOSES, window_start=window[0] if window else None,
        window_end=window[1] if window else None, expires_at=expires_at,
        next_attempt_at=max(not_before or now, now), created_by=created_by, created_at=now)
    session.add(job)
    await session.flush()
    return job


async def cancel_jobs(session: AsyncSession, job_ids: list[int], *, reason: str) -> list[int]:
    """Stop these jobs in the caller's transaction (a cascade accepted: the other responders are not called); an
    attempt ringing now is left to end and not retried. Returns the ids that were still open. Their owner is not
    told: the owner is the one stopping them."""
    if not job_ids:
        return []
    jobs = (await session.scalars(select(OutboundJob).where(
        OutboundJob.id.in_(job_ids), OutboundJob.state.in_(OPEN_JOB_STATES)).with_for_update())).all()
    now = utcnow()
    for job in jobs:
        job.state, job.outcome, job.finished_at = JobState.CANCELLED, reason[:32], now
    return [job.id for job in jobs]


async def _isolated(session: AsyncSession, job: OutboundJob, event: str, work: Awaitable[None]) -> None:
    """An owner's handler in a savepoint of the engine's transaction: what the owner writes commits with the
    engine's record, but an owner that fails loses only its own writes — the attempt's end and the key pressed are
    stored all the same, and the engine never stalls on another domain's bug (the error is logged)."""
    try:
        async with session.begin_nested():
            await work
    except Exception:
        log.exception(event, job_id=job.id, owner=job.owner, purpose=job.purpose.value)


class OutboundDialer:
    """The engine: rounds that start due jobs within the caps, the Originates, the settling of attempts from the
    call log, and the owners' handlers."""

    def __init__(self, db: Database, ami: AmiClient, settings: Settings, *, round_seconds: float = ROUND_SECONDS,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._db = db
        self._ami = ami
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self._quiet = parse_quiet_hours(settings.outbound_quiet_hours)
        self._caps = {OutboundPurpose(p): n for p, n in settings.outbound_concurrency_map.items()}
        self._caller_ids = {OutboundPurpose(p): n for p, n in settings.outbound_caller_id_map.items()}
        self._clock = clock
        self._owners: dict[str, OwnerHandler] = {}
        self._key_handlers: dict[str, KeyHandler] = {}
        self._rounds = PeriodicJob("outbound-dialer", self.run_round, first_run_seconds=round_seconds,
                                   interval_seconds=round_seconds)
        self._tasks: set[asyncio.Task[None]] = set()  # running Originates, kept from the garbage collector
        self._live: set[int] = set()  # the attempts whose Originate this process is waiting for
        self._caught_up_at: dt.datetime | None = None
        self._round_lock = asyncio.Lock()

    def on_attempt_ended(self, owner: str, handler: OwnerHandler) -> None:
        """``handler(session, ended)`` runs in the transaction that records each attempt's end of ``owner``'s
        jobs: what it writes commits with it."""
        self._owners[owner] = handler

    def on_key(self, owner: str, handler: KeyHandler) -> None:
        """``handler(session, job, attempt)`` runs when a key of the script's choices is pressed on one of
        ``owner``'s calls, in the transaction that stores it (before the call ends)."""
        self._key_handlers[owner] = handler

    async def script_for(self, attempt_id: int) -> tuple[OutboundJob, Script] | None:
        """The job and script an answered attempt runs (the AGI step), or None for an attempt that is not in
        flight."""
        async with self._db.transaction(read_only=True) as session:
            attempt = await session.get(OutboundAttempt, attempt_id)
            if attempt is None or attempt.state not in IN_FLIGHT:
                return None
            job = await session.get(OutboundJob, attempt.job_id)
            if job is None:
                return None
            return job, Script.model_validate(job.script)

    async def record_key(self, attempt_id: int, digit: str) -> str | None:
        """The key pressed on an attempt's call and what it means, stored at once (with its time), and the owner
        told; returns the choice (None for a key the script does not offer)."""
        now = self._clock()
        async with self._db.transaction() as session:
            attempt = await session.get(OutboundAttempt, attempt_id, with_for_update=True)
            job = await session.get(OutboundJob, attempt.job_id) if attempt is not None else None
            if attempt is None or job is None:
                return None
            choice = Script.model_validate(job.script).choices.get(digit)
            attempt.digit, attempt.digit_at, attempt.choice = digit, now, choice
            if attempt.answered_at is None:
                attempt.answered_at = now
            if attempt.state in (AttemptState.DIALLING, AttemptState.UNCERTAIN):
                attempt.state = AttemptState.ANSWERED  # the key proves it: the OriginateResponse may still come
            if choice is not None and (handler := self._key_handlers.get(job.owner)) is not None:
                await _isolated(session, job, "outbound.key_handler_failed", handler(session, job, attempt))
            linkedid, job_id = attempt.channel_id, job.id
        log.info("outbound.key", linkedid=linkedid, job_id=job_id, choice=choice)
        return choice

    def wake(self) -> None:
        """Bring the next round forward (a job was queued, a call ended)."""
        self._rounds.run_soon()

    async def start(self) -> None:
        await self._recover()
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def dialling(self) -> int:
        """Originates sent and not yet answered or failed."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for the Originates sent so far to be answered or fail (their attempts then say how)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def caught_up(self) -> None:
        """The call log has caught up with Asterisk after an AMI login: uncertain attempts can be settled now."""
        self._caught_up_at = self._clock()
        self.wake()

    async def call_ended(self, call: Call) -> None:
        if call.linkedid.startswith(CHANNEL_PREFIX):
            self.wake()

    async def cancel(self, job_id: int, *, reason: str, actor: Actor) -> OutboundJob:
        """Stop a job that has not been reached yet (a cascade stopped, a schedule withdrawn); an attempt already
        ringing is left to end by itself and the job is then not retried."""
        async with self._db.transaction() as session:
            job = await session.get(OutboundJob, job_id, with_for_update=True)
            if job is None:
                raise NotFound(f"no outbound job {job_id}", field="id")
            if job.state in OPEN_JOB_STATES:
                job.state, job.outcome, job.finished_at = JobState.CANCELLED, "cancelled", self._clock()
                record(session, actor, action="outbound.cancelled", target_type="outbound_job", target_id=job.id,
                       details={"purpose": job.purpose.value, "reason": reason})
                await self._tell_owner(session, job, None)
                log.warning("outbound.cancelled", job_id=job.id, purpose=job.purpose.value, by=actor.label)
            return job

    # -- the round -----------------------------------------------------------------------------------------------
    async def run_round(self) -> None:
        async with self._round_lock:
            await self._settle_in_flight()
            await self._expire()
            if self._ami.connected:
                await self._start_due()

    async def _any(self, statement: Any) -> bool:
        """Whether ``statement`` finds a row, read without taking a write turn: the round runs every second, and an
        idle one must not queue for SQLite's one writer beside the SOS intake."""
        async with self._db.transaction(read_only=True) as session:
            return await session.scalar(statement.limit(1)) is not None

    async def _recover(self) -> None:
        """After a restart: an attempt still marked dialling went away with its Originate in flight — uncertain,
        settled from the call log, never dialled again."""
        async with self._db.transaction() as session:
            stranded = (await session.scalars(select(OutboundAttempt).where(
                OutboundAttempt.state == AttemptState.DIALLING))).all()
            for attempt in stranded:
                attempt.state = AttemptState.UNCERTAIN
                attempt.reason = "the platform stopped with the dial in flight"
        if stranded:
            log.warning("outbound.uncertain_after_restart", attempts=len(stranded))

    async def _expire(self) -> None:
        now = self._clock()
        if not await self._any(select(OutboundJob.id).where(
                OutboundJob.state == JobState.QUEUED, OutboundJob.expires_at.is_not(None),
                OutboundJob.expires_at <= now)):
            return
        async with self._db.transaction() as session:
            expired = (await session.scalars(select(OutboundJob).where(
                OutboundJob.state == JobState.QUEUED, OutboundJob.expires_at.is_not(None),
                OutboundJob.expires_at <= now).with_for_update())).all()
            for job in expired:
                job.state, job.outcome, job.finished_at = JobState.EXPIRED, "expired", now
                await self._tell_owner(session, job, None)

    async def _start_due(self) -> None:
        now = self._clock()
        if not await self._any(select(OutboundJob.id).where(
                OutboundJob.state == JobState.QUEUED, OutboundJob.next_attempt_at <= now)):
            return
        async with self._db.transaction() as session:
            inbound = await session.scalar(select(func.count(Call.id)).where(
                Call.ended_at.is_(None), Call.kind.in_((CallKind.SOS, CallKind.HOTLINE)),
                Call.started_at > now - dt.timedelta(hours=6)))
            sos_waiting = await session.scalar(select(func.count(Call.id)).where(
                Call.ended_at.is_(None), Call.kind == CallKind.SOS, Call.agent_id.is_(None),
                Call.started_at > now - dt.timedelta(hours=6)))
            in_flight = dict((await session.execute(
                select(OutboundJob.purpose, func.count(OutboundAttempt.id))
                .join(OutboundJob, OutboundJob.id == OutboundAttempt.job_id)
                .where(OutboundAttempt.state.in_(IN_FLIGHT)).group_by(OutboundJob.purpose))).all())
            budget = outbound_budget(channels=self._settings.outbound_channels,
                                     reserved=self._settings.outbound_reserved_channels,
                                     inbound_in_progress=int(inbound or 0),
                                     outbound_in_flight=sum(in_flight.values()))
            if budget <= 0:
                return
            due = (await session.scalars(select(OutboundJob).where(
                OutboundJob.state == JobState.QUEUED, OutboundJob.next_attempt_at <= now)
                .order_by(OutboundJob.priority, OutboundJob.next_attempt_at, OutboundJob.id)
                .limit(budget + 50).with_for_update())).all()
            starts: list[tuple[OutboundJob, OutboundAttempt, Originate]] = []
            for job in due:
                if budget <= 0:
                    break
                if sos_waiting and job.purpose not in EMERGENCY_PURPOSES:
                    continue  # an SOS waits for an agent: only emergency work starts
                if in_flight.get(job.purpose, 0) >= self._caps.get(job.purpose, 1):
                    continue
                allowed_at = self._allowed_at(job, now)
                if allowed_at > now:
                    job.next_attempt_at = allowed_at  # outside its window or in the quiet hours: wait for it
                    continue
                attempt, request = await self._begin_attempt(session, job, now)
                starts.append((job, attempt, request))
                in_flight[job.purpose] = in_flight.get(job.purpose, 0) + 1
                budget -= 1
            started = [(job.id, job.purpose, job.elder_id, attempt.id, attempt.channel_id, request)
                       for job, attempt, request in starts]
        for job_id, purpose, elder_id, attempt_id, channel_id, request in started:
            log.info("outbound.dialling", linkedid=channel_id, job_id=job_id, purpose=purpose.value,
                     elder_id=elder_id)
            self._live.add(attempt_id)
            task = asyncio.create_task(self._originate(attempt_id, channel_id, request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _allowed_at(self, job: OutboundJob, now: dt.datetime) -> dt.datetime:
        window = DailyWindow.parse(job.window_start, job.window_end, field="window") \
            if job.window_start and job.window_end else None
        quiet = self._quiet if job.quiet_hours else None
        try:
            return next_allowed(now, self._zone, window=window, quiet=quiet)
        except ValueError:
            return now + dt.timedelta(days=365)  # never opens: _expire ends it at its expiry

    async def _begin_attempt(self, session: AsyncSession, job: OutboundJob,
                             now: dt.datetime) -> tuple[OutboundAttempt, Originate]:
        """The attempt, its call-log row and its audit entry, in the round's transaction: committed before the
        Originate is sent."""
        job.attempts += 1
        job.state = JobState.DIALLING
        channel_id = f"{CHANNEL_PREFIX}{job.id}-{job.attempts}-{secrets.token_hex(3)}"
        caller_number = self._caller_ids.get(job.purpose, self._settings.centre_number)
        call = Call(linkedid=channel_id, kind=CallKind.OUTBOUND, purpose=job.purpose.value,
                    caller_number=caller_number, callee_number=job.target, elder_id=job.elder_id, started_at=now)
        session.add(call)
        await session.flush()
        attempt = OutboundAttempt(job_id=job.id, number=job.attempts, channel_id=channel_id, call_id=call.id,
                                  state=AttemptState.DIALLING, started_at=now)
        session.add(attempt)
        await session.flush()
        record_dial(session, Actor(None, job.created_by), purpose=_DIAL_PURPOSES[job.purpose], number=job.target,
                    basis=DialBasis(job.dial_basis), call_id=call.id, order_id=job.work_order_id)
        channel = f"PJSIP/{job.target}@trunk" if job.via_trunk else f"PJSIP/{job.target}"
        request = Originate(channel=channel, context=CONTEXT, channel_id=channel_id, ring_seconds=job.ring_seconds,
                            caller_name=CALLER_NAMES[job.purpose], caller_number=caller_number,
                            variables={"CC_OUTBOUND_ATTEMPT": attempt.id})
        return attempt, request

    async def _originate(self, attempt_id: int, channel_id: str, request: Originate) -> None:
        bound = log.bind(linkedid=channel_id, attempt_id=attempt_id)
        try:
            await self._dial(attempt_id, request, bound)
        except Exception:
            # Storing the outcome failed (the database went away): the attempt stays as it was and, once its ring
            # time is long past, is settled from the call log like any dial whose outcome is unknown.
            bound.exception("outbound.outcome_not_stored")
        finally:
            self._live.discard(attempt_id)

    async def _dial(self, attempt_id: int, request: Originate, bound: Any) -> None:
        try:
            result = await originate(self._ami, request)
        except (AmiConnectionLost, AmiTimeout) as error:
            bound.error("outbound.uncertain", error=str(error),
                        detail="the Originate may be ringing: settled from the call log, never re-sent")
            await self._mark(attempt_id, AttemptState.UNCERTAIN, "the AMI link dropped with the dial in flight")
            return
        except AmiError as error:  # not sent (not connected): nothing rang
            bound.error("outbound.originate_failed", error=str(error))
            await self._attempt_over(attempt_id, AttemptState.FAILED, f"not sent: {error}"[:100])
            return
        if result.answered:
            await self._mark(attempt_id, AttemptState.ANSWERED, None, answered=True)
            bound.info("outbound.answered")
            return
        state = _ATTEMPT_ENDS.get(result.reason or "", AttemptState.FAILED)
        await self._attempt_over(attempt_id, state, (result.reason_text or result.message or "failed")[:100])
        bound.info("outbound.not_answered", state=state.value)

    async def _mark(self, attempt_id: int, state: AttemptState, reason: str | None, *, answered: bool = False) -> None:
        async with self._db.transaction() as session:
            attempt = await session.get(OutboundAttempt, attempt_id, with_for_update=True)
            if attempt is None or attempt.state not in IN_FLIGHT:
                return
            attempt.state = state
            attempt.reason = reason
            if answered and attempt.answered_at is None:
                attempt.answered_at = self._clock()

    async def _settle_in_flight(self) -> None:
        """Answered attempts whose call has ended, and uncertain ones the call log can now tell, are over. An
        attempt still marked dialling that no Originate of this process waits for, long past its ring time (its
        outcome could not be stored), is uncertain too."""
        now = self._clock()
        async with self._db.transaction(read_only=True) as session:
            rows = (await session.execute(
                select(OutboundAttempt.id, OutboundAttempt.state, OutboundJob.ring_seconds,
                       OutboundAttempt.started_at, Call.ended_at, CallLeg.answered_at, CallLeg.id)
                .join(OutboundJob, OutboundJob.id == OutboundAttempt.job_id)
                .outerjoin(Call, Call.id == OutboundAttempt.call_id)
                .outerjoin(CallLeg, CallLeg.uniqueid == OutboundAttempt.channel_id)
                .where(OutboundAttempt.state.in_(IN_FLIGHT)))).all()
        for attempt_id, state, ring_seconds, started_at, call_ended, leg_answered, leg_id in rows:
            if state is AttemptState.ANSWERED:
                if call_ended is not None:
                    await self._attempt_over(attempt_id, AttemptState.COMPLETED, None)
                continue
            if state is AttemptState.DIALLING:
                if attempt_id in self._live or now - started_at < dt.timedelta(
                        seconds=ring_seconds + RESPONSE_GRACE_SECONDS + 15):
                    continue  # its Originate is still awaited
                await self._mark(attempt_id, AttemptState.UNCERTAIN, "its outcome was never stored")
            # Uncertain: the call log decides, once it can.
            if leg_id is not None:
                if call_ended is None:
                    continue  # ringing or talking: wait for its end
                await self._attempt_over(attempt_id, AttemptState.COMPLETED if leg_answered else
                                         AttemptState.NO_ANSWER, "settled from the call log")
                continue
            caught_up = self._caught_up_at is not None and self._caught_up_at > started_at
            # Without a drop of the link (a plain timeout, an outcome not stored) the channel's own events would
            # have logged it by now.
            long_gone = now - started_at > dt.timedelta(seconds=2 * ring_seconds + RESPONSE_GRACE_SECONDS + 30)
            if self._ami.connected and (caught_up or long_gone):
                await self._attempt_over(attempt_id, AttemptState.NEVER_RANG, "settled from the call log")
            elif now - started_at > dt.timedelta(hours=1):
                # The platform never caught up (Asterisk gone for an hour): the call log cannot say; the job is
                # given up rather than dialled blind, and its owner hears so.
                await self._attempt_over(attempt_id, AttemptState.FAILED, "outcome unknown: not dialled again")

    async def _attempt_over(self, attempt_id: int, state: AttemptState, reason: str | None) -> None:
        """The attempt ended ``state``: the job done, retried or failed, the call row closed if it never got a
        channel, and the owner told — one transaction."""
        now = self._clock()
        async with self._db.transaction() as session:
            attempt = await session.get(OutboundAttempt, attempt_id, with_for_update=True)
            if attempt is None or attempt.state not in IN_FLIGHT:
                return
            attempt.state, attempt.ended_at = state, now
            if reason is not None:
                attempt.reason = reason
            job = await session.get(OutboundJob, attempt.job_id, with_for_update=True)
            assert job is not None  # an attempt's job is deleted only with it
            if attempt.call_id is not None and state is not AttemptState.COMPLETED:
                call = await session.get(Call, attempt.call_id, with_for_update=True)
                open_leg = await session.scalar(select(CallLeg.id).where(
                    CallLeg.call_id == attempt.call_id, CallLeg.ended_at.is_(None)).limit(1))
                if call is not None and call.ended_at is None and open_leg is None:
                    call.ended_at, call.disposition = now, _CALL_ENDS.get(state, Disposition.FAILED)
            if job.state is JobState.DIALLING:
                if state is AttemptState.COMPLETED:
                    job.state, job.finished_at = JobState.DONE, now
                    job.digit, job.outcome = attempt.digit, attempt.choice or ("answered" if attempt.digit is None
                                                                              else "other_key")
                    if attempt.digit is None and job.script.get("choices"):
                        job.outcome = "no_key"
                elif job.attempts >= job.max_attempts:
                    job.state, job.outcome, job.finished_at = JobState.FAILED, state.value, now
                else:
                    job.state = JobState.QUEUED
                    job.next_attempt_at = now + dt.timedelta(seconds=retry_delay(
                        job.attempts, base_seconds=job.retry_seconds, factor=job.retry_factor))
            await self._tell_owner(session, job, attempt)
            outcome = (job.id, job.purpose.value, job.state.value, attempt.channel_id)
        log.info("outbound.attempt_ended", linkedid=outcome[3], job_id=outcome[0], purpose=outcome[1],
                 attempt_state=state.value, job_state=outcome[2])
        self.wake()

    async def _tell_owner(self, session: AsyncSession, job: OutboundJob, attempt: OutboundAttempt | None) -> None:
        handler = self._owners.get(job.owner)
        if handler is None:
            return
        ended = AttemptEnded(
            job_id=job.id, owner_ref=job.owner_ref, purpose=job.purpose, attempt=attempt.number if attempt else 0,
            attempt_state=attempt.state if attempt else AttemptState.NEVER_RANG, job_state=job.state,
            digit=attempt.digit if attempt else None, choice=attempt.choice if attempt else None,
            digit_at=attempt.digit_at if attempt else None, call_id=attempt.call_id if attempt else None,
            reason=attempt.reason if attempt else job.outcome)
        await _isolated(session, job, "outbound.owner_failed", handler(session, ended))
