"""Contact cascades: an alarm's responders called in order until one presses 1 to accept and go.

**The list.** An elder's responders are those set on their file (``set_responders``), or else their contacts in
the order a centre calls them (relatives, then the paired social worker and volunteer, then the doctor, each by
priority), every one by call, 90 s each, expected within 30 minutes. CC_CASCADE_STATION_NUMBER, when set, is
the last step: the community station.

**A run.** ``start`` (an agent on the alarm card or the order, or the platform: a missed check-in) makes the
cascade and reaches out to the first responder: a call through the outbound engine (its purpose ``cascade``, never
taking what inbound SOS calls need) that describes the alarm and asks 1 accept and go, 2 decline, 3 the centre's
agent. The next responder is called when this one's call ends without an acceptance, or once the step's wait has
passed, whichever is first (a slow answer may still accept). The first 1 pressed stops the cascade: the other
calls not yet answered are cancelled, the agent's panel is told at once (``cascade`` on the desk), and the elder
gets the help-is-coming call with the responder's expected arrival. Nobody accepting ends it ``exhausted``: the
order goes to the top of the list and the supervisors' panels are told, to send the community station or 110/120
through an agent. Every call, key and time is on the order's trail; an agent may pause, resume or stop it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import push
from callcenter.alarms.models import Alarm
from callcenter.alarms.services import type_labels
from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.calls.models import Call
from callcenter.cascades.models import (
    OPEN_CASCADE_STATES,
    Cascade,
    CascadeCall,
    CascadeCallState,
    CascadeReason,
    CascadeState,
    Responder,
    ResponderChannel,
)
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device
from callcenter.dial_policy.services import DialBasis
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.logs import get_logger
from callcenter.notifications.models import Purpose as SmsPurpose
from callcenter.notifications.services import NotificationService
from callcenter.orders.models import WorkOrder
from callcenter.orders.trail import SYSTEM, record_event
from callcenter.outbound.models import AttemptState, OutboundAttempt, OutboundJob, OutboundPurpose
from callcenter.outbound.services import AttemptEnded, OutboundDialer, cancel_jobs, dialable, enqueue
from callcenter.periodic import PeriodicJob
from callcenter.users.models import Role

log = get_logger(__name__)

OWNER = "cascade"
HELP_COMING_OWNER = "help_coming"
DEFAULT_WAIT_SECONDS = 90
DEFAULT_ETA_MINUTES = 30
ROLE_ORDER = (ContactRole.RELATIVE, ContactRole.SOCIAL_WORKER, ContactRole.VOLUNTEER, ContactRole.DOCTOR)
STATION_NAME = "社区服务站"
RESPONDER_SCRIPT: dict[str, Any] = {
    "prompts": ["outbound-cascade-intro", "cascade-what-alarm", "outbound-cascade-keys"],
    "choices": {"1": "accept", "2": "decline", "3": "agent"},
    "replies": {"1": ["outbound-cascade-accepted"], "2": ["outbound-cascade-declined"], "3": ["to-agent"]},
    "agent_keys": ["3"], "agent_queue": "emergency", "no_key_prompts": ["outbound-no-key"],
}
# The expected arrival said to the elder: the first of these at or above the responder's minutes.
ETA_PROMPTS = ((10, "outbound-eta-10"), (20, "outbound-eta-20"), (30, "outbound-eta-30"), (45, "outbound-eta-45"),
               (60, "outbound-eta-60"))
ETA_LATER_PROMPT = "outbound-eta-later"
_CALL_STATES = {"accept": CascadeCallState.ACCEPTED, "decline": CascadeCallState.DECLINED,
                "agent": CascadeCallState.TO_AGENT}
_UNANSWERED = {AttemptState.NO_ANSWER: CascadeCallState.NO_ANSWER, AttemptState.BUSY: CascadeCallState.NO_ANSWER}
# Trail actions (orders.trail).
STARTED, CALLING, RESULT, ACCEPTED, EXHAUSTED = ("cascade_started", "cascade_call", "cascade_call_result",
                                                 "cascade_accepted", "cascade_exhausted")
PAUSED, RESUMED, STOPPED, HELP_COMING = "cascade_paused", "cascade_resumed", "cascade_stopped", "help_coming_call"
NOT_STARTED = "cascade_not_started"


@dataclasses.dataclass(frozen=True, slots=True)
class ResponderEntry:
    """One responder as the list gives it (configured or by default)."""

    contact_id: int | None
    name: str
    phone: str
    channel: ResponderChannel
    wait_seconds: int
    eta_minutes: int


def responder_script(what: str) -> dict[str, Any]:
    """The responder's call: who calls, what happened (``cascade-what-<what>``, a prepared segment per alarm type
    and cascade reason, naming no one), the keys."""
    segment = f"cascade-what-{what.replace('_', '-')}"  # prompt ids are lower-case letters, digits and '-'
    return {**RESPONDER_SCRIPT, "prompts": ["outbound-cascade-intro", segment, "outbound-cascade-keys"]}


def eta_prompt(minutes: int) -> str:
    return next((prompt for limit, prompt in ETA_PROMPTS if minutes <= limit), ETA_LATER_PROMPT)


async def responder_list(session: AsyncSession, elder_id: int, settings: Settings) -> list[ResponderEntry]:
    """The elder's responders in calling order: those set on the file, else the contacts by role and priority;
    then the community station when CC_CASCADE_STATION_NUMBER is set."""
    configured = (await session.execute(
        select(Responder, Contact).join(Contact, Contact.id == Responder.contact_id)
        .where(Responder.elder_id == elder_id).order_by(Responder.position))).all()
    entries = [ResponderEntry(contact.id, contact.name, contact.phone, responder.channel, responder.wait_seconds,
                              responder.eta_minutes) for responder, contact in configured]
    if not configured:
        contacts = (await session.scalars(select(Contact).where(Contact.elder_id == elder_id))).all()
        ordered = sorted(contacts, key=lambda c: (ROLE_ORDER.index(c.role) if c.role in ROLE_ORDER else 9,
                                                  c.priority, c.id))
        entries = [ResponderEntry(c.id, c.name, c.phone, ResponderChannel.CALL, DEFAULT_WAIT_SECONDS,
                                  DEFAULT_ETA_MINUTES) for c in ordered]
    if settings.cascade_station_number:
        entries.append(ResponderEntry(None, STATION_NAME, settings.cascade_station_number, ResponderChannel.CALL,
                                      DEFAULT_WAIT_SECONDS, DEFAULT_ETA_MINUTES))
    return entries


async def set_responders(session: AsyncSession, elder_id: int, items: Sequence[dict[str, Any]], *,
                         actor: Actor) -> list[Responder]:
    """Replace the elder's responder list; ``Invalid`` naming ``responders[i].<field>`` for a contact that is not
    the elder's, one without a dialable number, or a wait or arrival time out of range. Audited."""
    if await session.get(Elder, elder_id) is None:
        raise NotFound(f"no elder {elder_id}", field="id")
    seen: set[int] = set()
    rows: list[Responder] = []
    for index, item in enumerate(items):
        field = f"responders[{index}]"
        contact = await session.get(Contact, item["contact_id"])
        if contact is None or contact.elder_id != elder_id:
            raise Invalid(f"contact {item['contact_id']} is not one of this elder's contacts",
                          field=f"{field}.contact_id")
        if contact.id in seen:
            raise Invalid(f"{contact.name} is on the list twice", field=f"{field}.contact_id")
        seen.add(contact.id)
        dialable(contact.phone, via_trunk=True, field=f"{field}.contact_id")  # an SMS needs a number too
        rows.append(Responder(elder_id=elder_id, position=index + 1, contact_id=contact.id,
                              channel=ResponderChannel(item["channel"]), wait_seconds=item["wait_seconds"],
                              eta_minutes=item["eta_minutes"]))
    for old in (await session.scalars(select(Responder).where(Responder.elder_id == elder_id))).all():
        await session.delete(old)
    await session.flush()
    session.add_all(rows)
    await session.flush()
    record(session, actor, action="elder.responders_set", target_type="elder", target_id=elder_id,
           details={"responders": [{"contact_id": r.contact_id, "channel": r.channel.value,
                                    "wait_seconds": r.wait_seconds, "eta_minutes": r.eta_minutes} for r in rows]})
    return rows


class CascadeService:
    """Starts, advances and ends cascades; the outbound engine's owner of ``cascade`` and ``help_coming`` jobs."""

    def __init__(self, db: Database, dialer: OutboundDialer, settings: Settings, *,
                 known_prompts: frozenset[str] | None = None, round_seconds: float = 2.0,
                 sms: NotificationService | None = None) -> None:
        self._db = db
        self._sms = sms
        self._dialer = dialer
        self.settings = settings
        self._known_prompts = known_prompts
        self._hub: push.Fanout | None = None
        self._rounds = PeriodicJob("cascades", self.run_round, first_run_seconds=round_seconds,
                                   interval_seconds=round_seconds)
        dialer.on_attempt_ended(OWNER, self._call_ended)
        dialer.on_key(OWNER, self._key_pressed)

    def publish_to(self, hub: push.Fanout) -> None:
        """The panels' channel (the desk plugin hands it in): agents and supervisors see cascades live."""
        self._hub = hub

    async def start(self) -> None:
        await self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    # -- starting -------------------------------------------------------------------------------------------------
    async def begin(self, *, alarm_id: int | None = None, work_order_id: int | None = None,
                    reason: CascadeReason = CascadeReason.ALARM, actor: Actor) -> Cascade:
        """Start a cascade for an alarm (its work order) or an order: 404 for neither found, 409 when one is
        already running for that order, 422 when the elder has nobody to call."""
        async with self._db.transaction() as session:
            cascade = await self.begin_in(session, alarm_id=alarm_id, work_order_id=work_order_id, reason=reason,
                                          actor=actor)
        self._dialer.wake()
        self._publish(cascade)
        return cascade

    async def begin_in(self, session: AsyncSession, *, alarm_id: int | None, work_order_id: int | None,
                       reason: CascadeReason, actor: Actor) -> Cascade:
        """``begin`` in the caller's transaction (a missed check-in starts one with its order)."""
        if alarm_id is not None:
            alarm = await session.get(Alarm, alarm_id)
            if alarm is None:
                raise NotFound(f"no alarm {alarm_id}", field="alarm_id")
            if alarm.work_order_id is None:
                raise Conflict(f"alarm {alarm.number} has no work order", field="alarm_id")
            work_order_id = alarm.work_order_id
        if work_order_id is None:
            raise Invalid("name the alarm or the work order", field="alarm_id")
        order = await session.get(WorkOrder, work_order_id)
        if order is None:
            raise NotFound(f"no work order {work_order_id}", field="work_order_id")
        if order.elder_id is None:
            raise Invalid(f"work order {order.number} names no elder", field="work_order_id")
        running = await session.scalar(select(Cascade.id).where(
            Cascade.work_order_id == order.id, Cascade.state.in_(OPEN_CASCADE_STATES)).limit(1))
        if running is not None:
            raise Conflict(f"a contact cascade is already running for work order {order.number}",
                           field="work_order_id", code="cascade_running")
        entries = await responder_list(session, order.elder_id, self.settings)
        if not entries:
            raise Invalid("this elder has no contacts to call: add a relative, the social worker or a volunteer "
                          "to the elder's file", field="elder_id")
        now = utcnow()
        cascade = Cascade(elder_id=order.elder_id, alarm_id=alarm_id, work_order_id=order.id, reason=reason,
                          state=CascadeState.RUNNING, steps=len(entries), next_position=1, started_by=actor.label,
                          started_at=now)
        session.add(cascade)
        await session.flush()
        record_event(session, order.id, STARTED, actor_id=actor.id, actor_label=actor.label,
                     details={"cascade_id": cascade.id, "reason": reason.value, "responders": len(entries)})
        log.warning("cascade.started", cascade_id=cascade.id, order_id=order.id, alarm_id=alarm_id,
                    reason=reason.value, responders=len(entries))
        await self._next_step(session, cascade, entries, now)
        return cascade

    async def missed_checkin(self, session: AsyncSession, elder_id: int, work_order_id: int,
                             care_record_id: int) -> None:
        """Care calls: nobody answered today's check-in; its emergency order is raised in ``session``. The elder's
        responders are called ("no response to today's check-in") in the same transaction; when that cannot be
        (nobody to call), the order says why and the escalation stands."""
        try:
            cascade = await self.begin_in(session, alarm_id=None, work_order_id=work_order_id,
                                          reason=CascadeReason.MISSED_CHECKIN, actor=Actor(None, SYSTEM))
        except (Invalid, Conflict) as refused:
            record_event(session, work_order_id, NOT_STARTED, actor_label=SYSTEM,
                         details={"reason": refused.message, "care_record_id": care_record_id})
            log.warning("cascade.not_started", order_id=work_order_id, elder_id=elder_id, reason=refused.message)
            return
        self._dialer.wake()
        self._publish(cascade)

    async def abandoned_sos(self, session: AsyncSession, order_id: int, call: Call) -> None:
        """The calls domain: an SOS nobody answered became an abandoned SOS (its call-back owed, in ``session``).
        With CC_CASCADE_ON_ABANDONED_SOS the elder's responders are called at once, beside the call-back: someone
        may be needed at the door whatever the call-back finds (the agent stops the cascade if not)."""
        if self.settings.cascade_on_abandoned_sos != "on":
            return
        try:
            cascade = await self.begin_in(session, alarm_id=None, work_order_id=order_id,
                                          reason=CascadeReason.UNANSWERED_SOS, actor=Actor(None, SYSTEM))
        except (Invalid, Conflict) as refused:
            record_event(session, order_id, NOT_STARTED, actor_label=SYSTEM, call_id=call.id,
                         details={"reason": refused.message})
            log.warning("cascade.not_started", order_id=order_id, linkedid=call.linkedid, reason=refused.message)
            return
        self._dialer.wake()
        self._publish(cascade)

    # -- advancing ------------------------------------------------------------------------------------------------
    async def run_round(self) -> None:
        """Cascades whose current responder's wait has passed call the next one too."""
        now = utcnow()
        async with self._db.transaction(read_only=True) as session:  # idle rounds take no write turn
            waiting = await session.scalar(select(Cascade.id).where(
                Cascade.state == CascadeState.RUNNING, Cascade.step_deadline.is_not(None),
                Cascade.step_deadline <= now).limit(1))
        if waiting is None:
            return
        async with self._db.transaction() as session:
            due = (await session.scalars(select(Cascade).where(
                Cascade.state == CascadeState.RUNNING, Cascade.step_deadline.is_not(None),
                Cascade.step_deadline <= now).with_for_update())).all()
            for cascade in due:
                await self._next_step(session, cascade, None, now)
            changed = list(due)
        if changed:
            self._dialer.wake()
            for cascade in changed:
                self._publish(cascade)

    async def _next_step(self, session: AsyncSession, cascade: Cascade, entries: list[ResponderEntry] | None,
                         now: dt.datetime) -> None:
        """Reach out to the next responder, or end the cascade exhausted when none is left and no call of it is
        still under way."""
        if cascade.state is not CascadeState.RUNNING:
            return
        entries = entries if entries is not None else await responder_list(session, cascade.elder_id,
                                                                           self.settings)
        while cascade.next_position <= len(entries):
            entry = entries[cascade.next_position - 1]
            position = cascade.next_position
            cascade.next_position += 1
            call = CascadeCall(cascade_id=cascade.id, position=position, contact_id=entry.contact_id,
                               name=entry.name, channel=entry.channel, eta_minutes=entry.eta_minutes,
                               state=CascadeCallState.CALLING, started_at=now)
            session.add(call)
            await session.flush()
            if entry.channel in (ResponderChannel.CALL, ResponderChannel.BOTH):
                try:
                    job = await enqueue(
                        session, purpose=OutboundPurpose.CASCADE, owner=OWNER, owner_ref=call.id, target=entry.phone,
                        script=responder_script(await self._what(session, cascade)), created_by=SYSTEM,
                        elder_id=cascade.elder_id,
                        alarm_id=cascade.alarm_id, work_order_id=cascade.work_order_id,
                        ring_seconds=self.settings.outbound_ring_seconds, known_prompts=self._known_prompts,
                        dial_basis=DialBasis.CONTACT)
                except Invalid as refused:  # the number changed to something undiallable since it was listed
                    call.state, call.ended_at = CascadeCallState.FAILED, now
                    record_event(session, cascade.work_order_id, RESULT, actor_label=SYSTEM, details={
                        "cascade_id": cascade.id, "position": position, "name": entry.name, "outcome": "failed",
                        "reason": refused.message})
                    continue
                call.job_id = job.id
            else:
                call.state, call.ended_at = CascadeCallState.SMS_ONLY, now
            sms = await self._text(session, cascade, entry, now) if entry.channel is not ResponderChannel.CALL \
                else None
            record_event(session, cascade.work_order_id, CALLING, actor_label=SYSTEM, details={
                "cascade_id": cascade.id, "position": position, "name": entry.name, "channel": entry.channel.value,
                **({"sms": sms} if sms is not None else {})})
            cascade.step_deadline = now + dt.timedelta(seconds=entry.wait_seconds)
            if call.state is CascadeCallState.CALLING:
                return
        # Nobody left to call: over once no call of it is still ringing or talking.
        cascade.step_deadline = None
        under_way = await session.scalar(select(CascadeCall.id).where(
            CascadeCall.cascade_id == cascade.id, CascadeCall.state == CascadeCallState.CALLING).limit(1))
        if under_way is None:
            await self._exhaust(session, cascade, now)

    async def _what(self, session: AsyncSession, cascade: Cascade) -> str:
        """Which segment says what happened: the alarm's type, else why the cascade runs."""
        if cascade.alarm_id is not None and (alarm := await session.get(Alarm, cascade.alarm_id)) is not None:
            return alarm.type.value
        return cascade.reason.value if cascade.reason is not CascadeReason.ALARM else "alarm"

    async def _text(self, session: AsyncSession, cascade: Cascade, entry: ResponderEntry, now: dt.datetime) -> str:
        """The responder's SMS (``cascade_request``), queued with the step; what became of it, for the trail."""
        if self._sms is None:
            return "not sent: no SMS service"
        elder = await session.get(Elder, cascade.elder_id)
        alarm = await session.get(Alarm, cascade.alarm_id) if cascade.alarm_id is not None else None
        local = now.astimezone(ZoneInfo(self.settings.timezone))
        try:
            message = await self._sms.queue(
                session, to=entry.phone, template="cascade_request", purpose=SmsPurpose.CASCADE,
                values={"elder_name": elder.full_name if elder else "", "time": f"{local:%H:%M}",
                        "alarm": type_labels()[alarm.type] if alarm is not None else "紧急",
                        "hotline": self.settings.centre_number},
                elder_id=cascade.elder_id, alarm_id=cascade.alarm_id, work_order_id=cascade.work_order_id)
        except Invalid as refused:
            return f"not sent: {refused.message}"
        self._sms.wake()
        return f"queued ({message.state.value})"

    async def _exhaust(self, session: AsyncSession, cascade: Cascade, now: dt.datetime) -> None:
        cascade.state, cascade.finished_at = CascadeState.EXHAUSTED, now
        order = await session.get(WorkOrder, cascade.work_order_id)
        if order is not None:
            order.priority = 1
        record_event(session, cascade.work_order_id, EXHAUSTED, actor_label=SYSTEM, details={
            "cascade_id": cascade.id, "escalated_to": "supervisors",
            "next": "send the community station, or 110/120 through an agent"})
        log.error("cascade.exhausted", cascade_id=cascade.id, order_id=cascade.work_order_id)

    async def _call_ended(self, session: AsyncSession, ended: AttemptEnded) -> None:
        """The outbound engine: a responder's call ended (or its job did)."""
        if not ended.final:
            return
        call = await session.get(CascadeCall, ended.owner_ref) if ended.owner_ref is not None else None
        if call is None:
            return
        cascade = await session.get(Cascade, call.cascade_id, with_for_update=True)
        assert cascade is not None
        now = utcnow()
        if call.state is CascadeCallState.CALLING:
            if ended.choice is not None:
                call.state = _CALL_STATES.get(ended.choice, CascadeCallState.NO_KEY)
            elif ended.attempt_state is AttemptState.COMPLETED:
                call.state = CascadeCallState.NO_KEY
            elif ended.job_state.value == "cancelled":
                call.state = CascadeCallState.CANCELLED
            else:
                call.state = _UNANSWERED.get(ended.attempt_state, CascadeCallState.FAILED)
            call.call_id, call.ended_at = ended.call_id, now
            record_event(session, cascade.work_order_id, RESULT, actor_label=SYSTEM, call_id=ended.call_id,
                         details={"cascade_id": cascade.id, "position": call.position, "name": call.name,
                                  "outcome": call.state.value, "reason": ended.reason})
        # The next responder now, unless a later one is already being called (this step's wait had passed):
        # then that one's own call, or its wait, moves the cascade on.
        still_calling = await session.scalar(select(CascadeCall.id).where(
            CascadeCall.cascade_id == cascade.id, CascadeCall.state == CascadeCallState.CALLING).limit(1))
        if cascade.state is CascadeState.RUNNING and still_calling is None:
            await self._next_step(session, cascade, None, now)
        self._publish(cascade)

    async def _key_pressed(self, session: AsyncSession, job: OutboundJob, attempt: OutboundAttempt) -> None:
        """The outbound engine: a responder pressed a key of the script, stored now, during the call."""
        call = await session.get(CascadeCall, job.owner_ref) if job.owner_ref is not None else None
        if call is None:
            return
        cascade = await session.get(Cascade, call.cascade_id, with_for_update=True)
        assert cascade is not None
        state = _CALL_STATES.get(attempt.choice or "", CascadeCallState.NO_KEY)
        call.key, call.key_at, call.call_id, call.state = attempt.digit, attempt.digit_at, attempt.call_id, state
        record_event(session, cascade.work_order_id, RESULT, actor_label=SYSTEM, call_id=attempt.call_id,
                     at=attempt.digit_at, details={"cascade_id": cascade.id, "position": call.position,
                                                   "name": call.name, "key": attempt.digit, "outcome": state.value})
        if state is CascadeCallState.ACCEPTED and cascade.state in (*OPEN_CASCADE_STATES, CascadeState.EXHAUSTED):
            await self._accept(session, cascade, call, attempt.digit_at or utcnow())
        self._publish(cascade)

    async def _accept(self, session: AsyncSession, cascade: Cascade, call: CascadeCall, at: dt.datetime) -> None:
        cascade.state, cascade.finished_at, cascade.step_deadline = CascadeState.ACCEPTED, at, None
        cascade.accepted_by, cascade.accepted_at, cascade.eta_minutes = call.name, at, call.eta_minutes
        others = (await session.scalars(select(CascadeCall).where(
            CascadeCall.cascade_id == cascade.id, CascadeCall.id != call.id,
            CascadeCall.state == CascadeCallState.CALLING))).all()
        await cancel_jobs(session, [c.job_id for c in others if c.job_id is not None], reason="someone accepted")
        for other in others:
            other.state, other.ended_at = CascadeCallState.CANCELLED, at
        record_event(session, cascade.work_order_id, ACCEPTED, actor_label=SYSTEM, call_id=call.call_id, at=at,
                     details={"cascade_id": cascade.id, "name": call.name, "position": call.position,
                              "eta_minutes": call.eta_minutes, "cancelled_calls": len(others)})
        log.warning("cascade.accepted", cascade_id=cascade.id, order_id=cascade.work_order_id,
                    position=call.position, eta_minutes=call.eta_minutes)
        await self.help_coming_in(session, cascade.work_order_id, eta_minutes=call.eta_minutes,
                                  actor=Actor(None, SYSTEM), because=f"{call.name} accepted")

    # -- help is coming -------------------------------------------------------------------------------------------
    async def help_coming(self, work_order_id: int, *, eta_minutes: int, actor: Actor) -> OutboundJob:
        """Call the elder back with "help is on its way" and the expected arrival (an agent dispatched 120 or a
        provider): 404 / 422 as ``help_coming_in``."""
        async with self._db.transaction() as session:
            job = await self.help_coming_in(session, work_order_id, eta_minutes=eta_minutes, actor=actor,
                                            because="dispatched by the centre")
        self._dialer.wake()
        return job

    async def help_coming_in(self, session: AsyncSession, work_order_id: int, *, eta_minutes: int, actor: Actor,
                             because: str) -> OutboundJob:
        order = await session.get(WorkOrder, work_order_id)
        if order is None:
            raise NotFound(f"no work order {work_order_id}", field="id")
        elder = await session.get(Elder, order.elder_id) if order.elder_id is not None else None
        if elder is None:
            raise Invalid(f"work order {order.number} names no elder to tell", field="elder_id")
        if not 1 <= eta_minutes <= 240:
            raise Invalid("an expected arrival of 1 to 240 minutes", field="eta_minutes")
        # The elder's phone on file, else the device they called from.
        target, via_trunk = (elder.phone or "").strip(), True
        if not target:
            device = await session.scalar(select(Device).where(Device.elder_id == elder.id).limit(1))
            if device is None:
                raise Invalid(f"{elder.full_name} has no phone number or device to call", field="phone")
            target, via_trunk = device.sip_username, False
        job = await enqueue(session, purpose=OutboundPurpose.NOTIFICATION, owner=HELP_COMING_OWNER,
                            owner_ref=order.id, target=target, via_trunk=via_trunk, created_by=actor.label,
                            script={"prompts": ["outbound-help-coming", eta_prompt(eta_minutes)], "repeats": 2},
                            elder_id=elder.id, work_order_id=order.id, max_attempts=3, retry_seconds=60,
                            ring_seconds=self.settings.outbound_ring_seconds, known_prompts=self._known_prompts,
                            dial_basis=DialBasis.ELDER, language=elder.language or "zh-CN")
        record_event(session, order.id, HELP_COMING, actor_id=actor.id, actor_label=actor.label,
                     details={"job_id": job.id, "eta_minutes": eta_minutes, "because": because})
        return job

    # -- the agent's controls -------------------------------------------------------------------------------------
    async def pause(self, cascade_id: int, *, actor: Actor) -> Cascade:
        return await self._control(cascade_id, actor, wanted=(CascadeState.RUNNING,), to=CascadeState.PAUSED,
                                   action=PAUSED)

    async def resume(self, cascade_id: int, *, actor: Actor) -> Cascade:
        return await self._control(cascade_id, actor, wanted=(CascadeState.PAUSED,), to=CascadeState.RUNNING,
                                   action=RESUMED)

    async def halt(self, cascade_id: int, *, actor: Actor) -> Cascade:
        return await self._control(cascade_id, actor, wanted=OPEN_CASCADE_STATES, to=CascadeState.STOPPED,
                                   action=STOPPED)

    async def _control(self, cascade_id: int, actor: Actor, *, wanted: Sequence[CascadeState], to: CascadeState,
                       action: str) -> Cascade:
        now = utcnow()
        async with self._db.transaction() as session:
            cascade = await session.get(Cascade, cascade_id, with_for_update=True)
            if cascade is None:
                raise NotFound(f"no cascade {cascade_id}", field="id")
            if cascade.state not in wanted:
                raise Conflict(f"the cascade is {cascade.state.value}", field="state", code="illegal_transition")
            cascade.state = to
            cancelled = 0
            if to is CascadeState.STOPPED:
                cascade.finished_at, cascade.step_deadline = now, None
                calling = (await session.scalars(select(CascadeCall).where(
                    CascadeCall.cascade_id == cascade.id, CascadeCall.state == CascadeCallState.CALLING))).all()
                cancelled = len(await cancel_jobs(session, [c.job_id for c in calling if c.job_id is not None],
                                                  reason="cascade stopped"))
                for call in calling:  # a phone still ringing is left to stop by itself; its answer counts no more
                    call.state, call.ended_at = CascadeCallState.CANCELLED, now
            elif to is CascadeState.RUNNING:
                cascade.step_deadline = now  # the next responder at once: the wait ran out while paused
            record_event(session, cascade.work_order_id, action, actor_id=actor.id, actor_label=actor.label,
                         details={"cascade_id": cascade.id, **({"cancelled_calls": cancelled} if cancelled else {})})
        log.warning("cascade.control", cascade_id=cascade_id, action=action, by=actor.label)
        if to is CascadeState.RUNNING:
            self._rounds.run_soon()
        self._publish(cascade)
        return cascade

    # -- the panels -----------------------------------------------------------------------------------------------
    def _publish(self, cascade: Cascade) -> None:
        if self._hub is None:
            return
        frame = {"type": "cascade", "cascade": {
            "id": cascade.id, "alarm_id": cascade.alarm_id, "work_order_id": cascade.work_order_id,
            "state": cascade.state.value, "accepted_by": cascade.accepted_by, "eta_minutes": cascade.eta_minutes,
            "accepted_at": cascade.accepted_at.isoformat() if cascade.accepted_at else None}}
        self._hub.publish(push.roles((Role.AGENT, Role.SUPERVISOR)), frame)
