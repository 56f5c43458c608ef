"""Abandoned SOS: the elder hung up (or fell silent) before anyone answered. The centre calls back at once.

The emergency order is kept at top priority and marked; the platform rings an available agent's phone (AMI
Originate), and when the agent answers, Asterisk dials the elder's device (dialplan context cc-callback).
Pending callbacks are retried until an agent is free; a failed attempt is logged on the order and retried. The
Originate is sent once per attempt and never re-sent by the transport (see telephony.ami).

**Never dialled twice.** Each attempt's Originate carries a channel id of the platform's choosing, written on the
order's trail (``sos_callback_dialling``) before it is sent. When the AMI link drops (or the action times out, or
the platform is killed) with the attempt in flight, its outcome is unknown: Asterisk may be ringing the agent, or
the agent may already be talking to the elder. The attempt is then *uncertain* and is never simply retried: it
is settled from the call log, which the reconciler fills from Asterisk itself after the link returns
(calls.reconcile: the live channels, then the CDR). The channel id's call answered by the agent → the callback
started; ended unanswered → a new attempt; no such call once the platform has caught up → it never rang, a new
attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import secrets
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.agents.state import AgentRegistry
from callcenter.audit.services import Actor
from callcenter.calls.events import is_abandoned_sos
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device
from callcenter.dial_policy.services import DialBasis, DialPurpose, record_dial
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from callcenter.orders.trail import SYSTEM, record_event
from callcenter.periodic import PeriodicJob
from callcenter.telephony.ami import AmiClient, AmiConnectionLost, AmiError, AmiTimeout
from callcenter.telephony.originate import Originate, originate

log = get_logger(__name__)

CALLBACK_QUEUES = ("emergency",)
# Trail actions (orders.trail): a callback owed, and the agent answering it (the elder is then dialled).
ABANDONED = "sos_abandoned"
STARTED = "sos_callback_started"
DIALLING = "sos_callback_dialling"
UNCERTAIN = "sos_callback_uncertain"
FAILED = "sos_callback_attempt_failed"
CANCELLED = "sos_callback_cancelled"
# The Originate's ChannelId (and so the callback call's linkedid) starts with this.
CHANNEL_PREFIX = "ccb"
# An abandoned SOS older than this when the platform starts is left to the agents' open-order list.
RELOAD_WINDOW = dt.timedelta(hours=24)


AbandonedHandler = Callable[[AsyncSession, int, Call], Awaitable[None]]


@dataclasses.dataclass
class PendingCallback:
    order_id: int
    call_id: int
    linkedid: str
    target: str  # a dial string for the elder: their device's endpoint
    attempts: int = 0


def callback_request(pending: PendingCallback, *, channel_id: str, interface: str, ring_seconds: int) -> Originate:
    """The agent's phone (``interface``) into ``cc-callback``, which dials the elder's device once it answers;
    the agent's display shows the order it is for."""
    return Originate(
        channel=interface, context="cc-callback", channel_id=channel_id, ring_seconds=ring_seconds,
        caller_name="SOS回拨", caller_number=str(pending.order_id),
        variables={"CC_CALLBACK_TARGET": pending.target, "CC_ORDER_ID": pending.order_id,
                   "CC_CALLBACK_OF": pending.linkedid},
    )


@dataclasses.dataclass
class UncertainAttempt:
    """An attempt whose Originate may or may not have reached Asterisk: settled from the call log, never re-sent."""

    pending: PendingCallback
    channel_id: str
    agent: str
    since: dt.datetime


class SosCallbacks:
    def __init__(self, db: Database, ami: AmiClient, agents: AgentRegistry, *, retry_interval: float = 2.0,
                 ring_seconds: int = 30) -> None:
        self._db = db
        self._ami = ami
        self._agents = agents
        self._ring_seconds = ring_seconds
        self._pending: dict[int, PendingCallback] = {}
        self._uncertain: dict[int, UncertainAttempt] = {}
        # When the call log last caught up with Asterisk (calls.reconcile after an AMI login): an uncertain attempt
        # whose channel is still unknown after that never rang.
        self._caught_up_at: dt.datetime | None = None
        # Every retry interval: settle uncertain attempts, then ring a free agent for each pending callback.
        self._rounds = PeriodicJob("sos-callbacks", self._attempt_all, first_run_seconds=retry_interval,
                                   interval_seconds=retry_interval)
        self._running = False
        self._busy_agents: set[str] = set()
        self._attempts: set[asyncio.Task[None]] = set()  # kept so a running Originate is never garbage-collected
        self._on_abandoned: list[AbandonedHandler] = []

    def on_abandoned(self, handler: AbandonedHandler) -> None:
        """``handler(session, order_id, call)`` runs when an SOS becomes an abandoned SOS, in the transaction that
        records it (the contact cascade starts there): what it writes commits with the callback owed."""
        self._on_abandoned.append(handler)

    @property
    def pending(self) -> list[PendingCallback]:
        return list(self._pending.values())

    @property
    def uncertain(self) -> list[UncertainAttempt]:
        return list(self._uncertain.values())

    async def caught_up(self) -> None:
        """The call log has caught up with Asterisk (after an AMI login): settle the uncertain attempts now."""
        self._caught_up_at = utcnow()
        await self._settle_uncertain()

    async def start(self) -> None:
        await self.load_pending()
        await self._rounds.start()
        self._running = True

    async def load_pending(self, within: dt.timedelta = RELOAD_WINDOW) -> int:
        """After a restart, abandoned SOS calls not yet called back are pending again: none is forgotten. That
        includes one whose end was stored but whose callback was not yet owed when the platform was killed."""
        since = utcnow() - within
        async with self._db.transaction(read_only=True) as session:
            unowed = (await session.scalars(
                select(Call).join(WorkOrder, WorkOrder.call_id == Call.id)
                .where(Call.kind == CallKind.SOS, Call.ended_at >= since,
                       Call.disposition != Disposition.ANSWERED, WorkOrder.kind == WorkOrderKind.EMERGENCY,
                       ~select(WorkOrderEvent.id).where(WorkOrderEvent.work_order_id == WorkOrder.id,
                                                        WorkOrderEvent.action == ABANDONED).exists())
            )).all()
        for call in unowed:
            await self.call_ended(call)
        async with self._db.transaction(read_only=True) as session:
            abandoned = (await session.scalars(
                select(WorkOrderEvent).where(WorkOrderEvent.action == ABANDONED, WorkOrderEvent.at >= since)
            )).all()
            for event in abandoned:
                started = await session.scalar(select(WorkOrderEvent.id).where(
                    WorkOrderEvent.work_order_id == event.work_order_id,
                    WorkOrderEvent.action == STARTED).limit(1))
                target = (event.details or {}).get("callback_target")
                call = await session.get(Call, event.call_id) if event.call_id is not None else None
                if started is not None or not target or call is None:
                    continue
                pending = PendingCallback(event.work_order_id, call.id, call.linkedid, target)
                # The last attempt's fate: dialled (or uncertain) with no outcome after it means the platform went
                # away with the Originate in flight — settled from the call log, not dialled again.
                last = await session.scalar(
                    select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == event.work_order_id,
                                                 WorkOrderEvent.action.in_((DIALLING, UNCERTAIN, FAILED)))
                    .order_by(WorkOrderEvent.id.desc()).limit(1))
                details = (last.details or {}) if last is not None else {}
                if last is not None and last.action in (DIALLING, UNCERTAIN) and details.get("channel_id"):
                    pending.attempts = int(details.get("attempt") or 0)
                    self._uncertain.setdefault(event.work_order_id, UncertainAttempt(
                        pending, str(details["channel_id"]), str(details.get("agent") or ""), last.at))
                else:
                    self._pending.setdefault(event.work_order_id, pending)
        if self._pending or self._uncertain:
            log.warning("sos.callbacks_reloaded", pending=len(self._pending), uncertain=len(self._uncertain))
        return len(self._pending) + len(self._uncertain)

    async def stop(self) -> None:
        self._running = False
        await self._rounds.stop()
        for task in list(self._attempts):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def call_ended(self, call: Call) -> None:
        """Hooked to the call log and to the reconciler: an SOS that ended unanswered becomes an abandoned SOS
        with a callback. Idempotent: the live hang-up, the CDR catch-up and the start-up scan may all report the
        same call, and it is called back once."""
        if not is_abandoned_sos(call):
            return
        async with self._db.transaction() as session:
            order = await session.scalar(
                select(WorkOrder).where(WorkOrder.call_id == call.id, WorkOrder.kind == WorkOrderKind.EMERGENCY)
            )
            device = await session.get(Device, call.device_id) if call.device_id is not None else None
            if order is None:
                log.error("sos.abandoned_without_order", linkedid=call.linkedid, call_id=call.id)
                return
            known = await session.scalar(select(WorkOrderEvent.id).where(
                WorkOrderEvent.work_order_id == order.id, WorkOrderEvent.action == ABANDONED,
                WorkOrderEvent.call_id == call.id).limit(1))
            if known is not None:
                return  # owed already: pending, under way or done
            order.priority = 1
            order.title = "未接通的紧急呼叫（回拨中）"
            target = f"PJSIP/{device.sip_username}" if device is not None else ""
            record_event(session, order.id, ABANDONED, actor_label=SYSTEM, call_id=call.id,
                         details={"callback_target": target or None})
            order_id = order.id
            for handler in self._on_abandoned:
                await handler(session, order.id, call)
        log.warning("sos.abandoned", linkedid=call.linkedid, call_id=call.id, order_id=order_id,
                    callback_target=target or None)
        if not target:
            # No device to ring back (caller ID only): the order stays top priority for an agent to dial by hand.
            return
        self._pending[order_id] = PendingCallback(order_id, call.id, call.linkedid, target)
        if not self._running:  # before start (the start-up scan): the first round rings
            return
        await self._attempt_all()

    async def _attempt_all(self) -> None:
        await self._settle_uncertain()
        for pending in list(self._pending.values()):
            # Checked before each ring, not only when the callback was owed: the elder may have been reached
            # since, and ringing an agent and the elder for nothing would interrupt the help.
            if (reason := await self._no_longer_needed(pending)) is not None:
                del self._pending[pending.order_id]
                async with self._db.transaction() as session:
                    record_event(session, pending.order_id, CANCELLED, actor_label=SYSTEM, call_id=pending.call_id,
                                 details={"reason": reason, "attempts": pending.attempts})
                log.warning("sos.callback_cancelled", linkedid=pending.linkedid, order_id=pending.order_id,
                            reason=reason)
                continue
            free = [a for a in self._agents.available(CALLBACK_QUEUES) if a.username not in self._busy_agents]
            if not free or not self._ami.connected:
                return
            agent = free[0]
            self._busy_agents.add(agent.username)
            pending.attempts += 1
            task = asyncio.create_task(self._originate(pending, agent.username, agent.interface))
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)
            del self._pending[pending.order_id]

    async def _no_longer_needed(self, pending: PendingCallback) -> str | None:
        """Why the callback must not be made any more (its order closed or cancelled, or the elder reached by a
        newer call an agent answered), or None."""
        async with self._db.transaction() as session:
            order = await session.get(WorkOrder, pending.order_id)
            if order is None or order.status in (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED):
                return f"the order is {order.status.value if order else 'gone'}"
            call = await session.get(Call, pending.call_id)
            if call is None:
                return "the call is gone"
            same_caller = (Call.elder_id == call.elder_id) if call.elder_id is not None else (
                Call.device_id == call.device_id) if call.device_id is not None else None
            if same_caller is None:
                return None
            newer = await session.scalar(select(Call.linkedid).where(
                same_caller, Call.id != call.id, Call.started_at >= call.started_at,
                Call.agent_id.is_not(None), Call.answered_at.is_not(None)).limit(1))
            return f"the elder was reached on a newer call ({newer})" if newer is not None else None

    async def _originate(self, pending: PendingCallback, username: str, interface: str) -> None:
        channel_id = f"{CHANNEL_PREFIX}{pending.order_id}-{pending.attempts}-{secrets.token_hex(3)}"
        bound = log.bind(linkedid=pending.linkedid, order_id=pending.order_id, agent=username, channel_id=channel_id)
        request = callback_request(pending, channel_id=channel_id, interface=interface,
                                   ring_seconds=self._ring_seconds)
        trail = {"agent": username, "target": pending.target, "attempt": pending.attempts, "channel_id": channel_id}
        try:
            # On the trail before it is sent: if the platform dies with the Originate in flight, the restart knows
            # which channel to look for instead of dialling again.
            await self._trail(pending, DIALLING, trail)
        except Exception:
            self._busy_agents.discard(username)
            self._pending.setdefault(pending.order_id, pending)
            raise
        outcome = "failed"
        try:
            result = await originate(self._ami, request)
            code = "?" if result.reason is None else result.reason
            outcome = "agent_answered" if result.answered else f"agent_{code}"
        except (AmiConnectionLost, AmiTimeout) as error:
            outcome = "uncertain"
            bound.error("sos.callback_uncertain", error=str(error),
                        detail="the Originate may be ringing: settled from the call log, never re-sent")
        except AmiError as error:  # not sent at all (not connected): nothing rang
            bound.error("sos.callback_originate_failed", error=str(error))
            outcome = f"error: {error}"
        finally:
            self._busy_agents.discard(username)
        if outcome == "uncertain":
            await self._trail(pending, UNCERTAIN, trail)
            self._uncertain[pending.order_id] = UncertainAttempt(pending, channel_id, username, utcnow())
            return
        await self._trail(pending, STARTED if outcome == "agent_answered" else FAILED, {**trail, "outcome": outcome})
        if outcome == "agent_answered":
            bound.warning("sos.callback_started", target=pending.target)
        else:
            bound.warning("sos.callback_retry", outcome=outcome, attempt=pending.attempts)
            self._pending.setdefault(pending.order_id, pending)

    async def _trail(self, pending: PendingCallback, action: str, details: dict[str, object]) -> None:
        async with self._db.transaction() as session:
            record_event(session, pending.order_id, action, actor_label=SYSTEM, call_id=pending.call_id,
                         details=details)
            if action == DIALLING:  # every outbound dial is in the audit log too (dial_policy)
                record_dial(session, Actor(None, SYSTEM), purpose=DialPurpose.SOS_CALLBACK, number=pending.target,
                            basis=DialBasis.ELDER, call_id=pending.call_id, order_id=pending.order_id)

    async def _settle_uncertain(self) -> None:
        """Each uncertain attempt, from the call log: answered by the agent → started; ended unanswered, or never
        rang → a new attempt; still ringing or talking → wait."""
        for attempt in list(self._uncertain.values()):
            async with self._db.transaction(read_only=True) as session:
                call = await session.scalar(select(Call).where(Call.linkedid == attempt.channel_id))
                agent_answered = await session.scalar(select(CallLeg.answered_at).where(
                    CallLeg.uniqueid == attempt.channel_id)) if call is not None else None
            if call is None:
                caught_up = self._caught_up_at is not None and self._caught_up_at > attempt.since
                # Without a drop of the link (a plain timeout) the channel's own events would have logged it by now.
                long_gone = utcnow() - attempt.since > dt.timedelta(seconds=2 * self._ring_seconds + 30)
                if not self._ami.connected or not (caught_up or long_gone):
                    continue
                outcome = "never rang"
            elif call.ended_at is None:
                continue
            else:
                outcome = "agent_answered" if agent_answered is not None else "agent did not answer"
            del self._uncertain[attempt.pending.order_id]
            details = {"agent": attempt.agent, "target": attempt.pending.target, "attempt": attempt.pending.attempts,
                       "channel_id": attempt.channel_id, "outcome": outcome, "settled_from": "call log"}
            await self._trail(attempt.pending, STARTED if outcome == "agent_answered" else FAILED, details)
            log.warning("sos.callback_settled", linkedid=attempt.pending.linkedid, order_id=attempt.pending.order_id,
                        channel_id=attempt.channel_id, outcome=outcome)
            if outcome != "agent_answered":
                self._pending.setdefault(attempt.pending.order_id, attempt.pending)
