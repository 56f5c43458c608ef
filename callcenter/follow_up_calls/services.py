"""One-click follow-up call (回访, seed 6.4): the agent's own phone rings, and when the agent answers, the elder is
dialled through the trunk, so the agent talks to the elder about the finished service.

The platform originates the agent's phone (their account's extension, a PJSIP endpoint) into the dialplan context
``cc-follow-up`` with the elder's number as stored on the elder's record and validated again here (digits only):
never a number from the request. The call row is created before the Originate, keyed by the channel id the
platform chooses (it becomes the call's linkedid), so the order's trail names the call at once and the follow-up
recorded afterwards (``record_follow_up`` with ``call_id``) refers to it. The dialplan tells the outcome with
UserEvent ``CcFollowUp`` (ANSWER, or why not); the agent's phone not answering is recorded when the Originate
fails. One Originate per click, never re-sent (see telephony.ami); web handlers call this service, which talks to
Asterisk only through the platform's one AMI client.

The alarm card's "call the elder" (issue 15, ``dial_for_alarm``) is the same call — the agent's phone first, then
the elder's number on file, recorded — for an alarm the agent has taken, on the trail of the alarm's work order.
Other domains place the same call for what they own through ``dial_elder`` (the care-calls page's one-click call
back to an elder: no work order, the domain links the call to its own row in the same transaction), so this one
module rings agents' phones for elders.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import secrets
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.models import Alarm, AlarmState
from callcenter.api.errors import Conflict, Invalid, NotFound, Unavailable
from callcenter.audit.services import Actor
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.services import DialBasis, DialPurpose, record_dial
from callcenter.elders.models import Elder
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderStatus
from callcenter.orders.trail import ASTERISK, record_event
from callcenter.telephony.ami import AmiClient, AmiError, AmiEvent
from callcenter.telephony.originate import Originate, OriginateReason, originate
from callcenter.users.models import User

log = get_logger(__name__)

EVENTS = ("UserEvent",)
CONTEXT = "cc-follow-up"
# Originate ChannelId (and so the call's linkedid): the follow-up's own events are told apart without a lookup.
CHANNEL_PREFIX = "ccf"
RING_SECONDS = 30
# Trail actions (orders.trail): the click, the agent's phone not answering, the elder's outcome.
DIALLED = "follow_up_call"
FAILED = "follow_up_call_failed"
RESULT = "follow_up_call_result"
# How the call ends when the agent's phone was not answered, by the OriginateResponse Reason (any other: failed).
_AGENT_DISPOSITIONS = {OriginateReason.NO_ANSWER: Disposition.NO_ANSWER, OriginateReason.BUSY: Disposition.BUSY}
_DIGITS = re.compile(r"^[0-9]{3,20}$")
_CALLER_NAME = re.compile(r"[^0-9A-Za-z-]")


@dataclasses.dataclass(frozen=True, slots=True)
class DialTarget:
    """Whom a click calls and why: the elder (their number on file is dialled), what the agent's phone shows, the
    dial's purpose, the work order whose trail gets the call (or none), and ``linked(session, call_id)``, told the
    call's id in the transaction that stores it (a domain links the call to its own row)."""

    elder_id: int | None
    caller_name: str
    purpose: DialPurpose
    order: WorkOrder | None = None
    linked: Callable[[AsyncSession, int], Awaitable[None]] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FollowUpCall:
    order_id: int | None  # None: a call for another domain's row (``dial_elder``)
    call_id: int
    linkedid: str
    extension: str
    number: str
    started_at: dt.datetime


def dialable_number(elder: Elder | None) -> str:
    """The elder's number as the dialplan gets it: stored digits only (elders.schemas.normalise_phone), checked
    again, so nothing but a plain number ever reaches Dial()."""
    if elder is None:
        raise Invalid("the order names no elder to call back", field="elder_id")
    phone = (elder.phone or "").strip()
    if not phone:
        raise Invalid(f"{elder.full_name} has no phone number on file: add one to the elder's record",
                      field="phone")
    if not _DIGITS.fullmatch(phone):
        raise Invalid(f"the number on file for {elder.full_name} is not a dialable number: correct the elder's "
                      "record", field="phone")
    return phone


def originate_request(*, channel_id: str, extension: str, number: str, order_number: str,
                      order_id: int, caller_name: str | None = None) -> Originate:
    """The one Originate: the agent's phone into ``cc-follow-up``, showing which order (or alarm) and whom it
    calls."""
    return Originate(
        channel=f"PJSIP/{extension}", context=CONTEXT, channel_id=channel_id, ring_seconds=RING_SECONDS,
        caller_name=caller_name or f"回访 {_CALLER_NAME.sub('', order_number)}", caller_number=number,
        variables={"CC_FOLLOW_UP_NUMBER": number, "CC_ORDER_ID": order_id},
    )


class FollowUpDialer:
    def __init__(self, db: Database, ami: AmiClient, settings: Settings) -> None:
        self._db = db
        self._ami = ami
        self._settings = settings
        # What the agent's phone is ringing for now, ("order" | "alarm" | another domain's name, its id): a second
        # click waits for the first to be answered or fail.
        self._ringing: dict[tuple[str, int], str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def dial(self, order_id: int, *, user_id: int | None, username: str) -> FollowUpCall:
        """Ring ``user_id``'s phone for a call back to the order's elder; refuse and change nothing if it cannot
        be: no such order (404), the order not waiting for its follow-up (409), no extension on the account
        (409), no dialable number for the elder (422), no trunk (409), a ring for it already on (409), Asterisk
        unreachable (503). What the user can fix is said first, whatever the state of the telephony."""

        async def order_of(session: AsyncSession) -> DialTarget:
            order = await session.get(WorkOrder, order_id)
            if order is None:
                raise NotFound(f"no work order {order_id}", field="id")
            if order.status is not WorkOrderStatus.FOLLOW_UP:
                raise Conflict(f"work order {order.number} is {order.status.value}, not waiting for its "
                               "follow-up call", field="status", code="illegal_transition")
            return DialTarget(order.elder_id, f"回访 {_CALLER_NAME.sub('', order.number)}", DialPurpose.FOLLOW_UP,
                              order)

        return await self._place(order_of, key=("order", order_id), user_id=user_id, username=username)

    async def dial_for_alarm(self, alarm_id: int, *, user_id: int | None, username: str) -> FollowUpCall:
        """Click-to-dial from an alarm's card (issue 15): ring ``user_id``'s phone, and when it answers, the
        elder's number on file — the same call, recorded, as a follow-up's, on the alarm's work order's trail.
        Refused and nothing changed: no such alarm (404); the alarm not taken (409: take it first); its work order
        or elder missing (409, 422); then as ``dial``."""

        async def order_of(session: AsyncSession) -> DialTarget:
            alarm = await session.get(Alarm, alarm_id)
            if alarm is None:
                raise NotFound(f"no alarm {alarm_id}", field="id")
            if alarm.state not in (AlarmState.TAKEN, AlarmState.RESPONDING):
                raise Conflict(f"alarm {alarm.number} is {alarm.state.value}: take it before calling the elder",
                               field="state", code="illegal_transition")
            order = await session.get(WorkOrder, alarm.work_order_id) if alarm.work_order_id is not None else None
            if order is None:
                raise Conflict(f"alarm {alarm.number} has no work order", field="work_order_id")
            if alarm.elder_id is None:
                raise Invalid(f"alarm {alarm.number} names no elder to call", field="elder_id")
            return DialTarget(alarm.elder_id, f"报警 {_CALLER_NAME.sub('', alarm.number)}",
                              DialPurpose.ALARM_CALLBACK, order)

        return await self._place(order_of, key=("alarm", alarm_id), user_id=user_id, username=username)

    async def dial_elder(self, key: tuple[str, int], target_of: Callable[[AsyncSession], Awaitable[DialTarget]], *,
                         user_id: int | None, username: str) -> FollowUpCall:
        """The same one-click call for another domain's row ``key`` (its name and id): ``target_of`` checks the
        row in the call's transaction and says whom to call and why, or refuses; then as ``dial``."""
        return await self._place(target_of, key=key, user_id=user_id, username=username)

    async def _place(self, target_of: Callable[[AsyncSession], Awaitable[DialTarget]], *, key: tuple[str, int],
                     user_id: int | None, username: str) -> FollowUpCall:
        """The one click: checks (what the user can fix first), the call row and its trail and audit entries in
        one transaction, then the Originate in the background. ``target_of`` finds whom the call is for (the
        order whose trail gets it, the caller name the agent's phone shows, the dial's purpose), or refuses."""
        now = utcnow()
        ringing = self._ringing
        channel_id: str | None = None
        try:
            async with self._db.transaction() as session:
                target = await target_of(session)
                order = target.order
                order_id = order.id if order is not None else None
                channel_id = (f"{CHANNEL_PREFIX}{order_id}-{secrets.token_hex(4)}" if order is not None
                              else f"{CHANNEL_PREFIX}{key[0][:8]}{key[1]}-{secrets.token_hex(4)}")
                user = await session.get(User, user_id) if user_id is not None else None
                if user is None or not user.extension:
                    raise Conflict("your account has no phone extension to ring: ask an administrator to set "
                                   "one", field="extension")
                number = dialable_number(await session.get(Elder, target.elder_id) if target.elder_id else None)
                if not self._settings.trunk_uri:
                    raise Conflict("no SIP trunk is configured (CC_TRUNK_URI): outside numbers cannot be "
                                   "dialled", field="trunk")
                if key in ringing:
                    raise Conflict("a call for this is already ringing your phone", field="id")
                if not self._ami.connected:
                    raise Unavailable("Asterisk is not reachable right now: no call was made, try again "
                                      "shortly")
                # Held from here, before any await: a double click cannot ring the phone twice.
                ringing[key] = channel_id
                call = Call(linkedid=channel_id, kind=CallKind.OUTBOUND,
                            caller_number=self._settings.centre_number, callee_number=number,
                            elder_id=target.elder_id, agent_id=user.id, started_at=now)
                session.add(call)
                await session.flush()
                if order is not None:
                    record_event(session, order.id, DIALLED, at=now, actor_id=user.id, actor_label=username,
                                 from_status=order.status, to_status=order.status, call_id=call.id,
                                 details={"linkedid": channel_id, "extension": user.extension, "number": number,
                                          "purpose": target.purpose.value})
                if target.linked is not None:
                    await target.linked(session, call.id)
                record_dial(session, Actor(user.id, username), purpose=target.purpose, number=number,
                            basis=DialBasis.ELDER, call_id=call.id, order_id=order_id)
                placed = FollowUpCall(order_id=order_id, call_id=call.id, linkedid=channel_id,
                                      extension=user.extension, number=number, started_at=now)
                request = originate_request(channel_id=channel_id, extension=user.extension, number=number,
                                            order_number=order.number if order is not None else "",
                                            order_id=order_id or 0, caller_name=target.caller_name)
        except BaseException:
            if channel_id is not None and ringing.get(key) == channel_id:  # refused or not stored: free again
                del ringing[key]
            raise
        task = asyncio.create_task(self._await_origination(placed, request, ringing, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.warning("follow_up.dial", linkedid=channel_id, order_id=order_id, call_id=placed.call_id,
                    agent=username, extension=placed.extension, purpose=target.purpose.value, ringing_for=key[0])
        return placed

    async def _await_origination(self, placed: FollowUpCall, request: Originate,
                                 ringing: dict[tuple[str, int], str], key: tuple[str, int]) -> None:
        """The agent's phone answered (the dialplan now dials the elder) or not: then the trail says why."""
        bound = log.bind(linkedid=placed.linkedid, order_id=placed.order_id, call_id=placed.call_id)
        reason: str | None = None
        code = ""
        try:
            result = await originate(self._ami, request)
            if not result.answered:
                code = result.reason or ""
                reason = result.reason_text or result.message or "failed"
        except AmiError as error:
            reason = f"Asterisk is not reachable: {error}"
        finally:
            ringing.pop(key, None)
        if reason is None:
            bound.info("follow_up.agent_answered")
            return
        async with self._db.transaction() as session:
            if placed.order_id is not None:
                record_event(session, placed.order_id, FAILED, actor_label=ASTERISK, call_id=placed.call_id,
                             details={"linkedid": placed.linkedid, "reason": f"your phone: {reason}"})
            # The phone may never have rung (unregistered): no channel, no Hangup event, so the call ends here.
            call = await session.get(Call, placed.call_id, with_for_update=True)
            open_leg = await session.scalar(select(CallLeg.id).where(CallLeg.call_id == placed.call_id,
                                                                     CallLeg.ended_at.is_(None)).limit(1))
            if call is not None and call.ended_at is None and open_leg is None:
                call.ended_at = utcnow()
                call.disposition = _AGENT_DISPOSITIONS.get(code, Disposition.FAILED)
        bound.warning("follow_up.agent_not_reached", reason=reason)

    async def handle(self, event: AmiEvent) -> None:
        """UserEvent CcFollowUp from ``cc-follow-up``: the elder answered, or why not, on the order's trail."""
        if event.get("Event") != "UserEvent" or event.get("UserEvent") != "CcFollowUp":
            return
        linkedid = event.get("Linkedid", "")
        if not linkedid.startswith(CHANNEL_PREFIX):
            return
        status = str(event.get("Status") or "UNKNOWN")[:32]
        async with self._db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
            dialled = await session.scalar(select(WorkOrderEvent).where(
                WorkOrderEvent.call_id == call.id, WorkOrderEvent.action == DIALLED).limit(1)) if call else None
            if call is None or dialled is None:
                return
            record_event(session, dialled.work_order_id, RESULT, actor_label=ASTERISK, call_id=call.id,
                         details={"linkedid": linkedid, "dial_status": status, "elder_answered": status == "ANSWER"})
            order_id = dialled.work_order_id
        log.warning("follow_up.result", linkedid=linkedid, order_id=order_id, call_id=call.id, dial_status=status)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
