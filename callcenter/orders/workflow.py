"""The work order's life as a state machine (seed 6): intake → review → dispatch → the provider accepts (or
declines and the order is re-matched) → staff on site → receipt → the centre's review and follow-up call → closed;
consultations are answered, complaints investigated and resolved with the complainant.

``TRANSITIONS`` is the whole machine: which action moves which kinds of order from which statuses to which, and
who may take it (the centre, or the provider the order is dispatched to). Anything else is refused with 409 and
changes nothing. Every step leaves a trail event (who, when, what, from which call) — seed 4.2.4 — and bumps the
order's version, so a second person acting on what they read earlier is refused instead of overwriting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.db.base import utcnow
from callcenter.orders.models import (
    Complaint,
    ComplaintSource,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderKind,
    WorkOrderStatus,
)
from callcenter.orders.schemas import Action, ActionPayload
from callcenter.orders.trail import record_event
from callcenter.providers.models import ProviderStaff, ServiceType
from callcenter.providers.services import active_provider, recompute_rating, suggest
from callcenter.users.models import Role

__all__ = ["TRANSITIONS", "Action", "Transition", "WorkflowActor", "allowed_actions", "perform"]

S = WorkOrderStatus
K = WorkOrderKind
FINAL = frozenset({S.CLOSED, S.CANCELLED})
# Orders that go to a provider's door.
SERVICE_KINDS = frozenset({K.SERVICE_REQUEST, K.DEVICE_FAULT, K.EMERGENCY})
ALL_KINDS = frozenset(K)
CENTRE = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AGENT})
# Centre staff who may record a provider's step on its behalf (the provider phoned it in).
ON_BEHALF = frozenset({Role.ADMIN, Role.SUPERVISOR})
# A staff member's "arrived at" time may not be in the future beyond clock skew between devices.
START_SKEW = dt.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowActor:
    """Who takes a step. ``role`` None with ``provider_id`` set is a provider's own system (signed reporting API)."""

    user_id: int | None
    label: str
    role: Role | None
    provider_id: int | None = None
    call_id: int | None = None

    @property
    def is_provider(self) -> bool:
        return self.provider_id is not None and self.role in (None, Role.PROVIDER)


@dataclasses.dataclass(frozen=True, slots=True)
class StepClock:
    """When a step is taken: the instant (UTC, for the trail and the order's timestamps) and the date in the centre's
    time zone (CC_TIMEZONE), on which a provider's licence is judged: it runs through its last day there, not
    until midnight UTC (08:00 in Beijing)."""

    now: dt.datetime
    today: dt.date

    @classmethod
    def at(cls, now: dt.datetime, tz: ZoneInfo) -> StepClock:
        if now.tzinfo is None:
            raise ValueError("a step's time must be timezone-aware")
        return cls(now=now.astimezone(dt.UTC), today=now.astimezone(tz).date())


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    kinds: frozenset[WorkOrderKind]
    sources: frozenset[WorkOrderStatus]
    target: WorkOrderStatus | None  # None: the status stays (a step recorded within it)
    by_provider: bool  # the provider's step (centre supervisors may record it on its behalf)


def _t(action: Action, kinds: Collection[WorkOrderKind], sources: Collection[WorkOrderStatus],
       target: WorkOrderStatus | None, *, by_provider: bool = False) -> Transition:
    return Transition(action, frozenset(kinds), frozenset(sources), target, by_provider)


TRANSITIONS: tuple[Transition, ...] = (
    _t(Action.SUBMIT, SERVICE_KINDS, {S.OPEN}, S.UNDER_REVIEW),
    _t(Action.RETURN, SERVICE_KINDS, {S.UNDER_REVIEW}, S.OPEN),
    _t(Action.DISPATCH, SERVICE_KINDS, {S.UNDER_REVIEW}, S.DISPATCHED),
    _t(Action.ACCEPT, SERVICE_KINDS, {S.DISPATCHED}, S.ACCEPTED, by_provider=True),
    _t(Action.DECLINE, SERVICE_KINDS, {S.DISPATCHED}, S.UNDER_REVIEW, by_provider=True),
    _t(Action.ASSIGN, SERVICE_KINDS, {S.ACCEPTED, S.IN_SERVICE}, None, by_provider=True),
    _t(Action.START, SERVICE_KINDS, {S.ACCEPTED}, S.IN_SERVICE, by_provider=True),
    _t(Action.FINISH, SERVICE_KINDS, {S.IN_SERVICE}, S.SERVICE_DONE, by_provider=True),
    _t(Action.APPROVE_RECEIPT, SERVICE_KINDS, {S.SERVICE_DONE}, S.FOLLOW_UP),
    _t(Action.REJECT_RECEIPT, SERVICE_KINDS, {S.SERVICE_DONE}, S.IN_SERVICE),
    _t(Action.RECORD_FOLLOW_UP, SERVICE_KINDS, {S.FOLLOW_UP}, None),
    _t(Action.REOPEN, SERVICE_KINDS, {S.FOLLOW_UP}, S.UNDER_REVIEW),
    _t(Action.CLOSE, SERVICE_KINDS, {S.FOLLOW_UP}, S.CLOSED),
    # An emergency handled entirely on the call (no visit needed) closes with its outcome.
    _t(Action.CLOSE, {K.EMERGENCY}, {S.OPEN, S.UNDER_REVIEW}, S.CLOSED),
    _t(Action.ANSWER, {K.CONSULTATION}, {S.OPEN}, S.CLOSED),
    _t(Action.INVESTIGATE, {K.COMPLAINT}, {S.OPEN, S.RESOLUTION_PROPOSED}, S.INVESTIGATING),
    _t(Action.ADD_EVIDENCE, {K.COMPLAINT}, {S.INVESTIGATING}, None),
    _t(Action.PROPOSE_RESOLUTION, {K.COMPLAINT}, {S.INVESTIGATING}, S.RESOLUTION_PROPOSED),
    _t(Action.CONTACT_COMPLAINANT, {K.COMPLAINT}, {S.RESOLUTION_PROPOSED}, None),
    _t(Action.CLOSE, {K.COMPLAINT}, {S.RESOLUTION_PROPOSED}, S.CLOSED),
    _t(Action.CANCEL, ALL_KINDS, set(S) - FINAL - {S.SERVICE_DONE, S.FOLLOW_UP}, S.CANCELLED),
)


def _transition(order: WorkOrder, action: Action) -> Transition | None:
    for transition in TRANSITIONS:
        if transition.action is action and order.kind in transition.kinds and order.status in transition.sources:
            return transition
    return None


def _may(transition: Transition, order: WorkOrder, actor: WorkflowActor) -> bool:
    if transition.by_provider:
        if actor.is_provider:
            return actor.provider_id == order.provider_id
        return actor.role in ON_BEHALF
    return actor.role in CENTRE


def allowed_actions(order: WorkOrder, actor: WorkflowActor) -> list[Action]:
    """The actions ``actor`` may take on ``order`` now (the panel shows these as buttons)."""
    return [action for action in Action
            if (transition := _transition(order, action)) is not None and _may(transition, order, actor)]


def visible_to(order: WorkOrder, actor: WorkflowActor) -> bool:
    """A provider sees only orders dispatched to it; the centre sees all."""
    if actor.is_provider:
        return order.provider_id == actor.provider_id and order.dispatched_at is not None
    return True


async def perform(session: AsyncSession, order_id: int, action: Action, *, actor: WorkflowActor,
                  version: int | None, payload: ActionPayload, tz: ZoneInfo,
                  now: dt.datetime | None = None) -> WorkOrder:
    """Take one step on an order in the caller's transaction, or refuse it and change nothing.

    ``version`` is the one the actor read (None only for the signed provider API, whose reports are idempotent
    by their own id). Raises NotFound (no such order, or not the provider's), Conflict ``illegal_transition`` or
    ``stale_version`` (409), Invalid (a field the step needs is missing or wrong, 422). ``tz`` is the centre's
    time zone (CC_TIMEZONE): its date decides whether a provider's licence is still valid.
    """
    clock = StepClock.at(now or utcnow(), tz)
    # Row lock on PostgreSQL (SQLite serialises writers anyway); the version column catches the rest at flush.
    try:
        order = await session.get(WorkOrder, order_id, with_for_update=True)
    except StaleDataError:  # the session held an older copy: someone else changed it since
        raise Conflict(f"work order {order_id} was changed by someone else", field="version",
                       code="stale_version") from None
    if order is None or not visible_to(order, actor):
        raise NotFound(f"no work order {order_id}", field="id")
    if version is not None and order.version != version:
        raise Conflict(f"work order {order.number} was changed by someone else (now version {order.version})",
                       field="version", code="stale_version")
    transition = _transition(order, action)
    if transition is None:
        allowed = ", ".join(a.value for a in allowed_actions(order, actor)) or "none"
        raise Conflict(f"{action.value} is not possible on a {order.kind.value} order that is "
                       f"{order.status.value} (possible now: {allowed})", field="action", code="illegal_transition")
    if not _may(transition, order, actor):
        raise Conflict(f"{action.value} on work order {order.number} is not yours to take", field="action",
                       code="illegal_transition")
    from_status = order.status
    details = await _STEPS[action](session, order, actor, payload, clock)
    if transition.target is not None:
        order.status = transition.target
    # Always write the order row: the version moves on every step, even one recorded within a status.
    order.updated_at = clock.now
    record_event(session, order.id, action.value, at=clock.now, actor_id=actor.user_id, actor_label=actor.label,
                 from_status=from_status, to_status=order.status, call_id=payload.call_id or actor.call_id,
                 details=details)
    try:
        await session.flush()
    except StaleDataError:
        raise Conflict(f"work order {order.number} was changed by someone else", field="version",
                       code="stale_version") from None
    if order.status is S.CLOSED:
        # A closed order's satisfaction, or a founded complaint, moves the provider's rating (seed 6.6, 8).
        rated = {order.provider_id, order.complaint.about_provider_id if order.complaint else None} - {None}
        for provider_id in rated:
            await recompute_rating(session, provider_id)  # type: ignore[arg-type]
    return order


# --- the steps: each checks what it needs, changes the order and returns the trail details ---------------------

Step = Callable[[AsyncSession, WorkOrder, WorkflowActor, ActionPayload, StepClock], Any]


def _required(value: Any, field: str, what: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid(f"{what} is required for this step", field=field)
    return value


async def _submit(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    return {}


async def _return(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    return {"reason": _required(payload.reason, "reason", "the reason it goes back")}


async def _dispatch(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                    clock: StepClock) -> dict[str, Any]:
    """The review (seed 6.2): description complete, kind and service set; then to the chosen provider."""
    _required(order.description, "description", "a description of what is needed")
    service = _required(order.service, "service", "the service needed")
    provider_id = payload.provider_id or order.provider_id
    matched = None
    if provider_id is None:
        best = await _candidates(session, order, await declined_providers(session, order.id), clock.today)
        if not best:
            raise Invalid(f"no active provider offers {service}: choose one or cancel", field="provider_id")
        provider_id, matched = best[0].provider.id, best[0].reason
    provider = await active_provider(session, provider_id, service, today=clock.today)
    order.provider_id = provider.id
    order.dispatched_at = clock.now
    details: dict[str, Any] = {"provider_id": provider.id, "provider": provider.name,
                               "notified": ["provider_portal"]}
    if matched is not None:
        details["matched"] = matched
    return details


async def _accept(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    order.accepted_at = clock.now
    return {"provider_id": order.provider_id}


async def _candidates(session: AsyncSession, order: WorkOrder, excluded: Collection[int],
                      today: dt.date) -> list[Any]:
    """The providers matching proposes for this order on ``today``, best first, without those excluded."""
    return await suggest(session, ServiceType(order.service), order.elder_id, today=today, exclude=excluded)


async def declined_providers(session: AsyncSession, order_id: int) -> set[int]:
    """Providers that declined this order: re-matching never proposes them again."""
    rows = await session.scalars(select(WorkOrderEvent.details).where(
        WorkOrderEvent.work_order_id == order_id, WorkOrderEvent.action == Action.DECLINE.value))
    return {int(d["provider_id"]) for d in rows if isinstance(d, dict) and d.get("provider_id") is not None}


async def _decline(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                   clock: StepClock) -> dict[str, Any]:
    """Declined with a reason: re-matched to the next best provider (never one that declined) and back to review,
    where the reviewer dispatches it again."""
    reason = _required(payload.reason, "reason", "the reason for declining")
    declined = order.provider_id
    excluded = await declined_providers(session, order.id) | ({declined} if declined is not None else set())
    candidates = await _candidates(session, order, excluded, clock.today) if order.service else []
    order.provider_id = candidates[0].provider.id if candidates else None
    order.dispatched_at = None
    order.accepted_at = None
    order.staff_id = None
    return {"provider_id": declined, "reason": reason,
            "rematched_to": order.provider_id,
            "rematch_reason": candidates[0].reason if candidates else "no other provider offers the service"}


async def _assign(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    staff_id = _required(payload.staff_id, "staff_id", "the staff member")
    staff = await session.get(ProviderStaff, staff_id)
    if staff is None or staff.provider_id != order.provider_id:
        raise Invalid(f"no staff member {staff_id} at this order's provider", field="staff_id")
    if not staff.active:
        raise Invalid(f"{staff.name} is no longer active", field="staff_id")
    if staff.skills and order.service not in staff.skills:
        raise Invalid(f"{staff.name} does not deliver {order.service}", field="staff_id")
    previous = order.staff_id
    order.staff_id = staff.id
    return {"staff_id": staff.id, "staff": staff.name, "previous_staff_id": previous}


async def _start(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                 clock: StepClock) -> dict[str, Any]:
    if payload.staff_id is not None and payload.staff_id != order.staff_id:
        await _assign(session, order, actor, payload, clock)
    _required(order.staff_id, "staff_id", "a staff member assigned")
    at = payload.at or clock.now
    if at > clock.now + START_SKEW:
        raise Invalid("the arrival time is in the future", field="at")
    if order.accepted_at is not None and at < order.accepted_at:
        raise Invalid("the arrival time is before the provider accepted the order", field="at")
    order.started_at = at
    details: dict[str, Any] = {"staff_id": order.staff_id, "at": at.isoformat()}
    if (payload.latitude is None) != (payload.longitude is None):
        raise Invalid("give both latitude and longitude, or neither", field="latitude")
    if payload.latitude is not None:
        details["location"] = {"latitude": payload.latitude, "longitude": payload.longitude}
    return details


async def _finish(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    receipt = _required(payload.receipt, "receipt", "the service receipt")
    order.finished_at = clock.now
    order.receipt = receipt.model_dump(mode="json") | {"filed_at": clock.now.isoformat(), "filed_by": actor.label}
    order.satisfaction = receipt.satisfaction
    return {"receipt": order.receipt}


async def _approve_receipt(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                           clock: StepClock) -> dict[str, Any]:
    return {}


async def _reject_receipt(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                          clock: StepClock) -> dict[str, Any]:
    return {"reason": _required(payload.reason, "reason", "what is missing from the receipt")}


async def _record_follow_up(session: AsyncSession, order: WorkOrder, actor: WorkflowActor,
                            payload: ActionPayload, clock: StepClock) -> dict[str, Any]:
    result = _required(payload.follow_up, "follow_up", "the follow-up result")
    order.follow_up = result.model_dump(mode="json") | {"at": clock.now.isoformat(), "by": actor.label}
    order.satisfaction = result.satisfaction
    return {"follow_up": order.follow_up}


async def _reopen(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    reason = _required(payload.reason, "reason", "why the need is not solved")
    order.dispatched_at = order.accepted_at = order.started_at = order.finished_at = None
    order.staff_id = None
    # The next close needs a new follow-up call about the next visit (the old one stays on the trail).
    order.follow_up = None
    return {"reason": reason}


async def _close(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                 clock: StepClock) -> dict[str, Any]:
    if order.kind is K.COMPLAINT:
        complaint = _complaint(order)
        if complaint.complainant_contacted_at is None:
            raise Invalid("contact the complainant about the proposed resolution before closing",
                          field="complainant_response")
        order.resolution = _required(payload.outcome, "outcome", "the outcome")
        complaint.founded = _required(payload.founded, "founded", "whether the complaint was founded")
    elif order.status is S.FOLLOW_UP:
        if not (order.follow_up or {}).get("solved"):
            raise Invalid("the follow-up call has not confirmed the need is solved: record it, or reopen",
                          field="follow_up")
        order.resolution = payload.outcome or order.resolution
    else:  # an emergency handled on the call
        order.resolution = _required(payload.outcome, "outcome", "the outcome")
    order.closed_at = clock.now
    return {"outcome": order.resolution} | ({"founded": payload.founded} if order.kind is K.COMPLAINT else {})


async def _answer(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    order.resolution = _required(payload.answer, "answer", "the answer")
    order.closed_at = clock.now
    return {"answer": order.resolution, "within_deadline": order.due_at is None or clock.now <= order.due_at}


def _complaint(order: WorkOrder) -> Complaint:
    if order.complaint is None:  # raised before complaints had details: the call is the source
        order.complaint = Complaint(source=ComplaintSource.CALL)
    return order.complaint


async def _investigate(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                       clock: StepClock) -> dict[str, Any]:
    complaint = _complaint(order)
    complaint.handler_id = actor.user_id
    return {"handler": actor.label} | ({"reason": payload.reason} if payload.reason else {})


async def _add_evidence(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                        clock: StepClock) -> dict[str, Any]:
    text = _required(payload.evidence, "evidence", "the evidence")
    complaint = _complaint(order)
    entry = {"at": clock.now.isoformat(), "by": actor.label, "text": text}
    complaint.evidence = [*complaint.evidence, entry]  # a new list: JSON columns track assignment, not mutation
    return {"evidence": entry}


async def _propose_resolution(session: AsyncSession, order: WorkOrder, actor: WorkflowActor,
                              payload: ActionPayload, clock: StepClock) -> dict[str, Any]:
    complaint = _complaint(order)
    complaint.proposed_resolution = _required(payload.proposed_resolution, "proposed_resolution",
                                              "the proposed resolution")
    complaint.complainant_contacted_at = None  # a new proposal needs a new conversation
    return {"proposed_resolution": complaint.proposed_resolution}


async def _contact_complainant(session: AsyncSession, order: WorkOrder, actor: WorkflowActor,
                               payload: ActionPayload, clock: StepClock) -> dict[str, Any]:
    complaint = _complaint(order)
    complaint.complainant_response = _required(payload.complainant_response, "complainant_response",
                                               "what the complainant said")
    complaint.complainant_contacted_at = clock.now
    return {"complainant_response": complaint.complainant_response}


async def _cancel(session: AsyncSession, order: WorkOrder, actor: WorkflowActor, payload: ActionPayload,
                  clock: StepClock) -> dict[str, Any]:
    order.resolution = _required(payload.reason, "reason", "the reason for cancelling")
    order.closed_at = clock.now
    return {"reason": order.resolution}


_STEPS: dict[Action, Step] = {
    Action.SUBMIT: _submit, Action.RETURN: _return, Action.DISPATCH: _dispatch, Action.ACCEPT: _accept,
    Action.DECLINE: _decline, Action.ASSIGN: _assign, Action.START: _start, Action.FINISH: _finish,
    Action.APPROVE_RECEIPT: _approve_receipt, Action.REJECT_RECEIPT: _reject_receipt,
    Action.RECORD_FOLLOW_UP: _record_follow_up, Action.CLOSE: _close, Action.REOPEN: _reopen,
    Action.ANSWER: _answer, Action.INVESTIGATE: _investigate, Action.ADD_EVIDENCE: _add_evidence,
    Action.PROPOSE_RESOLUTION: _propose_resolution, Action.CONTACT_COMPLAINANT: _contact_complainant,
    Action.CANCEL: _cancel,
}
