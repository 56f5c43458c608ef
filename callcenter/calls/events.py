"""AMI events → the call log and the SOS trail. One transaction per event, in arrival order."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls import services, sos
from callcenter.calls.journal import AMI_EVENT
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.calls.services import caller_id
from callcenter.db.base import utcnow
from callcenter.db.retry import is_transient, with_retry
from callcenter.db.session import Database
from callcenter.journal import Journal
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.orders.trail import record_event
from callcenter.telephony.ami import AmiEvent
from callcenter.users.models import User

log = get_logger(__name__)

EVENTS = ("Newchannel", "Newstate", "Hangup", "QueueCallerJoin", "AgentConnect", "UserEvent")
CHANNEL_STATE_UP = "6"
EMERGENCY_QUEUE = "emergency"

CallEnded = Callable[[Call], Awaitable[None]]
# How long one event is retried while the database is busy or unreachable before it is given up (and logged);
# later events wait behind it, so the call log keeps Asterisk's order.
EVENT_RETRY_SECONDS = 10.0
# With a journal (calls.journal): how long an event is retried before it is journaled instead.
JOURNAL_AFTER_SECONDS = 2.0


def _retrying(event: AmiEvent, error: BaseException, attempt: int) -> None:
    log.error("call.event_retry", ami_event=event.get("Event"), uniqueid=event.get("Uniqueid"),
              linkedid=event.get("Linkedid"), attempt=attempt, error=f"{type(error).__name__}: {str(error)[-200:]}")


def event_time(event: AmiEvent) -> dt.datetime:
    """Asterisk's own timestamp (manager.conf timestampevents=yes) when present: queueing delay never skews it."""
    raw = event.get("Timestamp")
    if raw:
        try:
            return dt.datetime.fromtimestamp(float(raw), dt.UTC)
        except ValueError:
            pass
    return utcnow()


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class CallEventRecorder:
    def __init__(self, db: Database, journal: Journal | None = None) -> None:
        self._db = db
        self._journal = journal
        self._call_ended: list[CallEnded] = []
        self._caught_up: list[Callable[[], Awaitable[None]]] = []

    def on_call_ended(self, callback: CallEnded) -> None:
        self._call_ended.append(callback)

    def on_caught_up(self, callback: Callable[[], Awaitable[None]]) -> None:
        """``callback`` runs each time the call log has caught up with Asterisk after an AMI login (the live
        channels, then the CDR): a dialer whose Originate was in flight when the link dropped can now tell whether
        it rang."""
        self._caught_up.append(callback)

    async def caught_up(self) -> None:
        for callback in self._caught_up:
            try:
                await callback()
            except Exception:
                log.exception("call.caught_up_callback_failed", callback=getattr(callback, "__qualname__", "?"))

    async def handle(self, event: AmiEvent) -> None:
        """One AMI event into the call log; into the journal instead when the database cannot take it (or when
        earlier events already wait there: the log keeps Asterisk's order)."""
        if self._journal is None:
            await self.apply(event)
            return
        if self._journal.backlog:
            await self._journal.append(AMI_EVENT, dict(event))
            return
        try:
            await self.apply(event, patient=False)
        except Exception as error:
            if not is_transient(error):
                raise
            log.error("call.event_journaled", ami_event=event.get("Event"), uniqueid=event.get("Uniqueid"),
                      linkedid=event.get("Linkedid"), error=f"{type(error).__name__}: {str(error)[-200:]}")
            await self._journal.append(AMI_EVENT, dict(event))

    async def apply(self, event: AmiEvent, *, patient: bool = True) -> None:
        """Store one AMI event (idempotent: a replayed event changes nothing already stored).

        ``patient``: retried in order for up to EVENT_RETRY_SECONDS, waiting for an attempt in flight. Otherwise
        (a journal takes what fails) only for JOURNAL_AFTER_SECONDS, and an attempt hanging on a stalled database
        is left to finish or fail alone: the event goes to the journal and later events are not held up."""
        name = event.get("Event")
        uniqueid, linkedid = event.get("Uniqueid", ""), event.get("Linkedid", "")
        at = event_time(event)
        if name == "UserEvent":
            await with_retry(functools.partial(self._user_event, event, at), in_order=patient,
                             deadline=EVENT_RETRY_SECONDS if patient else JOURNAL_AFTER_SECONDS,
                             on_retry=functools.partial(_retrying, event))
            return
        if not uniqueid or not linkedid:
            return
        channel = event.get("Channel", "")

        async def apply() -> Call | None:
            ended: Call | None = None
            # A caller joining the emergency queue may need its SOS order raised here (the safety net): urgent.
            async with self._db.transaction(urgent=name == "QueueCallerJoin") as session:
                if name == "Newchannel":
                    await services.channel_created(
                        session, uniqueid=uniqueid, linkedid=linkedid, channel=channel,
                        caller_number=caller_id(event.get("CallerIDNum")),
                        caller_name=caller_id(event.get("CallerIDName")),
                        callee_number=caller_id(event.get("Exten")), at=at,
                    )
                elif name == "Newstate" and event.get("ChannelState") == CHANNEL_STATE_UP:
                    await services.channel_answered(session, uniqueid=uniqueid, linkedid=linkedid, channel=channel,
                                                    at=at)
                elif name == "QueueCallerJoin":
                    queue = event.get("Queue", "")
                    await services.entered_queue(session, linkedid=linkedid, queue=queue, at=at)
                    if queue == EMERGENCY_QUEUE:
                        await self._emergency_safety_net(session, event, linkedid)
                elif name == "AgentConnect":
                    username = event.get("MemberName", "")
                    agent_id = await session.scalar(select(User.id).where(User.username == username))
                    call = await services.agent_connected(
                        session, linkedid=linkedid, queue=event.get("Queue", ""), agent_id=agent_id,
                        hold_seconds=_seconds(event.get("HoldTime")), at=at,
                    )
                    await _trail(session, call, "answered_by_agent", at=at, actor_id=agent_id,
                                 actor_label=username or "agent",
                                 details={"queue": event.get("Queue"), "hold_seconds": _seconds(event.get("HoldTime"))})
                    log.info("call.agent_connected", uniqueid=uniqueid, linkedid=linkedid, call_id=call.id,
                             agent=username, queue=event.get("Queue"), hold_seconds=event.get("HoldTime"))
                elif name == "Hangup":
                    cause = event.get("Cause")
                    call = await services.channel_hung_up(
                        session, uniqueid=uniqueid, linkedid=linkedid, channel=channel,
                        cause=int(cause) if cause and cause.isdigit() else None, cause_text=event.get("Cause-txt"),
                        at=at,
                    )
                    if call.ended_at == at:  # this hangup closed the call's last leg
                        ended = call
                        log.info("call.ended", uniqueid=uniqueid, linkedid=linkedid, call_id=call.id,
                                 disposition=call.disposition.value, elder_id=call.elder_id, kind=call.kind.value)
            return ended

        ended = await with_retry(apply, deadline=EVENT_RETRY_SECONDS if patient else JOURNAL_AFTER_SECONDS,
                                 in_order=patient, on_retry=functools.partial(_retrying, event))
        if ended is not None and ended.ended_at is not None:
            for callback in self._call_ended:
                await callback(ended)

    async def _emergency_safety_net(self, session: AsyncSession, event: AmiEvent, linkedid: str) -> None:
        """Whatever happened to the AGI, a call in the emergency queue has its emergency order."""
        call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
        if call is not None and call.kind is CallKind.HOTLINE:
            # The IVR sent a hotline caller to the emergency queue: an emergency, but still a hotline call.
            if await session.scalar(select(WorkOrder.id).where(WorkOrder.call_id == call.id,
                                                             WorkOrder.kind == WorkOrderKind.EMERGENCY)) is None:
                order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="system",
                                          elder_id=call.elder_id, call_id=call.id, device_id=call.device_id,
                                          title="热线转紧急", details={"from": "hotline menu"})
                log.warning("sos.order_raised_for_hotline_emergency", linkedid=linkedid, call_id=call.id,
                            order=order.number)
            return
        call, order, _, raised = await sos.sos_intake(
            session, linkedid=linkedid, endpoint=sos.endpoint_of(event.get("Channel", "")),
            caller_number=caller_id(event.get("CallerIDNum")), serial=None, actor_label="system")
        if raised:
            log.error("sos.order_raised_by_safety_net", linkedid=linkedid, call_id=call.id, order=order.number,
                      detail="the sos AGI did not raise it (platform down, busy or failing)")

    async def _user_event(self, event: AmiEvent, at: dt.datetime) -> None:
        """The SOS dialplan announces each escalation step (CcSosStep); it lands on the order's trail. An
        answered queue call that is being recorded announces its serial (CcRecording)."""
        if event.get("UserEvent") == "CcRecording":
            await self._recording_started(event)
            return
        if event.get("UserEvent") != "CcSosStep":
            return
        linkedid = event.get("Linkedid", "")
        async with self._db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
            if call is None:
                return
            step, reason = event.get("Step", ""), event.get("Reason") or None
            await _trail(session, call, f"sos_step:{step}", at=at, actor_id=None, actor_label="asterisk",
                         details={"step": step, "reason": reason, "at": at.isoformat()})
        log.warning("sos.step", linkedid=linkedid, call_id=call.id, step=step, reason=reason)


    async def _recording_started(self, event: AmiEvent) -> None:
        """Stamp the call with its recording's serial, so the pipeline collects the file the moment it ends."""
        linkedid, serial = event.get("Linkedid", ""), event.get("Serial", "")
        async with self._db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.linkedid == linkedid).with_for_update())
            if call is None or not serial:
                return
            call.recording_serial = call.recording_serial or serial
            call_id = call.id
        log.info("call.recording_started", uniqueid=event.get("Uniqueid"), linkedid=linkedid, call_id=call_id,
                 recording_serial=serial)


async def _trail(session: AsyncSession, call: Call, action: str, *, at: dt.datetime, actor_id: int | None,
                 actor_label: str, details: dict[str, object]) -> None:
    """Add a step to the trail of the emergency order raised for this call (SOS calls only), at the event's own
    time; a step already there with that time (an event replayed from the journal) is not added again."""
    if call.kind is not CallKind.SOS:
        return
    order = await session.scalar(
        select(WorkOrder).where(WorkOrder.call_id == call.id, WorkOrder.kind == WorkOrderKind.EMERGENCY).limit(1)
    )
    if order is None:
        return
    if await session.scalar(select(WorkOrderEvent.id).where(
            WorkOrderEvent.work_order_id == order.id, WorkOrderEvent.action == action,
            WorkOrderEvent.at == at).limit(1)) is not None:
        return
    record_event(session, order.id, action, at=at, actor_id=actor_id, actor_label=actor_label, call_id=call.id,
                 details=details)


def is_abandoned_sos(call: Call) -> bool:
    """An SOS that ended with no person ever answering: hung up, or a dead line Asterisk cut (RTP timeout)."""
    return call.kind is CallKind.SOS and call.ended_at is not None and call.disposition is not Disposition.ANSWERED
