"""Work orders: raising them and recording every step in their event trail (seed 4.2.4)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.db.base import utcnow
from callcenter.orders.deadlines import due_at_for
from callcenter.orders.models import (
    Complaint,
    ComplaintSource,
    WorkOrder,
    WorkOrderKind,
    WorkOrderStatus,
)
from callcenter.orders.trail import CREATED, UPDATED, new_event, record_event
from callcenter.providers.services import active_provider

# Deadlines are counted on the centre's calendar (CC_TIMEZONE); this is the default where none is passed.
CENTRE_TIMEZONE = ZoneInfo("Asia/Shanghai")

# 1 = most urgent. An SOS outranks everything; a complaint or consultation waits behind service needs.
DEFAULT_PRIORITY = {
    WorkOrderKind.EMERGENCY: 1,
    WorkOrderKind.DEVICE_FAULT: 2,
    WorkOrderKind.SERVICE_REQUEST: 3,
    WorkOrderKind.COMPLAINT: 3,
    WorkOrderKind.CONSULTATION: 4,
}
DEFAULT_TITLE = {
    WorkOrderKind.EMERGENCY: "紧急呼叫",
    WorkOrderKind.DEVICE_FAULT: "设备故障",
    WorkOrderKind.SERVICE_REQUEST: "服务请求",
    WorkOrderKind.COMPLAINT: "投诉",
    WorkOrderKind.CONSULTATION: "咨询",
}


def order_number(now: dt.datetime | None = None) -> str:
    """WO-YYYYMMDD-XXXXXXXX: sortable by day, unguessable within it."""
    now = now or utcnow()
    return f"WO-{now:%Y%m%d}-{secrets.token_hex(4).upper()}"


async def raise_order(session: AsyncSession, *, kind: WorkOrderKind, actor_label: str, elder_id: int | None = None,
                      call_id: int | None = None, device_id: int | None = None, title: str | None = None,
                      description: str | None = None, priority: int | None = None, actor_id: int | None = None,
                      location_text: str | None = None, latitude: float | None = None,
                      longitude: float | None = None, service: str | None = None,
                      details: dict[str, object] | None = None, provider_id: int | None = None,
                      due_at: dt.datetime | None = None, complaint: dict[str, Any] | None = None,
                      now: dt.datetime | None = None, tz: ZoneInfo = CENTRE_TIMEZONE) -> WorkOrder:
    """Create an open work order and its first trail entry in the caller's transaction.

    Its deadline is the kind's (orders.deadlines) unless ``due_at`` is given; a complaint gets its details row
    (source: the IVR option when raised by the IVR, else the call) and the earlier of 5 working days and the
    forwarding body's own deadline."""
    now = now or utcnow()
    complaint_row = None
    if kind is WorkOrderKind.COMPLAINT:
        fields = dict(complaint or {})
        fields.setdefault("source", ComplaintSource.IVR if actor_label == "ivr" else ComplaintSource.CALL)
        complaint_row = Complaint(**fields)
        if due_at is None:
            due_at = due_at_for(kind, now, tz, external_deadline=complaint_row.external_deadline)
    elif due_at is None:
        due_at = due_at_for(kind, now, tz)
    order = WorkOrder(
        number=order_number(), kind=kind, status=WorkOrderStatus.OPEN,
        priority=priority if priority is not None else DEFAULT_PRIORITY[kind], elder_id=elder_id, call_id=call_id,
        device_id=device_id, title=title or DEFAULT_TITLE[kind], description=description,
        location_text=location_text, latitude=latitude, longitude=longitude, created_by_id=actor_id,
        service=service, provider_id=provider_id, due_at=due_at, created_at=now, updated_at=now,
        complaint=complaint_row,
    )
    order.events = [new_event(CREATED, at=now, actor_id=actor_id, actor_label=actor_label,
                              to_status=WorkOrderStatus.OPEN, call_id=call_id, details=details)]
    session.add(order)
    await session.flush()
    return order


async def record_on_call_order(session: AsyncSession, call_id: int, action: str, *, actor_id: int | None,
                               actor_label: str, details: dict[str, object]) -> WorkOrder | None:
    """Put a step of a call (e.g. its conference) on the trail of the order raised for that call: the emergency
    order if there is one, else the call's first order. None when the call has no order."""
    order = await session.scalar(select(WorkOrder).where(WorkOrder.call_id == call_id).order_by(
        (WorkOrder.kind != WorkOrderKind.EMERGENCY), WorkOrder.id).limit(1))
    if order is not None:
        record_event(session, order.id, action, actor_id=actor_id, actor_label=actor_label, call_id=call_id,
                     details=details)
    return order


# Fields an agent completes during the call (seed 6.1); status moves through its own workflow, not here.
EDITABLE_FIELDS = ("kind", "title", "description", "priority", "location_text", "service", "provider_id", "latitude",
                   "longitude", "due_at")
_FINAL_STATUSES = (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED)
# What decides who serves the order may be edited only before it is dispatched; afterwards the workflow's steps
# (decline and re-match, reopen) change it, so the provider is never switched under its feet.
_ROUTING_FIELDS = frozenset({"kind", "service", "provider_id"})
_BEFORE_DISPATCH = (WorkOrderStatus.DRAFT, WorkOrderStatus.OPEN, WorkOrderStatus.UNDER_REVIEW)
_BEFORE_REVIEW = (WorkOrderStatus.DRAFT, WorkOrderStatus.OPEN)


async def update_order(session: AsyncSession, order_id: int, *, version: int, changes: dict[str, object],
                       actor_id: int | None, actor_label: str, call_id: int | None = None,
                       tz: ZoneInfo = CENTRE_TIMEZONE) -> WorkOrder:
    """Apply an agent's edits if ``version`` is the one they read; every changed field lands on the trail.

    A stale ``version`` means someone else saved in between: refused (409), nothing changes — the agent reloads
    and sees the other edit instead of silently overwriting it.
    """
    # Row lock on PostgreSQL (SQLite serialises writers anyway); the version column catches the rest at flush.
    order = await session.get(WorkOrder, order_id, with_for_update=True)
    if order is None:
        raise NotFound(f"no work order {order_id}", field="id")
    if order.status in _FINAL_STATUSES:
        raise Conflict(f"work order {order.number} is {order.status.value}; it can no longer be edited",
                       field="status")
    if order.version != version:
        raise Conflict(f"work order {order.number} was changed by someone else (now version {order.version})",
                       field="version", code="stale_version")
    routing = sorted(set(changes) & _ROUTING_FIELDS)
    if routing and order.status not in _BEFORE_DISPATCH:
        raise Conflict(f"{', '.join(routing)} of work order {order.number} cannot change once it is "
                       f"{order.status.value}: the provider decline/re-match or a reopen goes through the workflow",
                       field=routing[0], code="illegal_transition")
    if "kind" in changes and changes["kind"] != order.kind and order.status not in _BEFORE_REVIEW:
        # Each kind has its own first steps (a complaint is investigated, a consultation answered, from open).
        raise Conflict(f"the kind of work order {order.number} can change only while it is open (it is "
                       f"{order.status.value}): return it from review first", field="kind",
                       code="illegal_transition")
    changes = {name: _plain(value) if name == "service" else value for name, value in changes.items()}
    if "kind" in changes and changes["kind"] != order.kind and "due_at" not in changes:
        # A new kind brings its own deadline (48 h consultation, 5 working days complaint, …) from the intake time.
        changes["due_at"] = due_at_for(WorkOrderKind(changes["kind"]), order.created_at, tz)
    if changes.get("kind") == WorkOrderKind.COMPLAINT and order.complaint is None:
        order.complaint = Complaint(source=ComplaintSource.CALL)
    service = changes.get("service", order.service)
    provider_id = changes.get("provider_id", order.provider_id)
    if provider_id is not None and ("provider_id" in changes or "service" in changes):
        if service is None:
            raise Invalid("choose the service needed before a provider", field="service")
        await active_provider(session, int(provider_id), service,  # type: ignore[call-overload]
                              today=utcnow().astimezone(tz).date())
    diff: dict[str, list[object]] = {}
    for field, value in changes.items():
        if field not in EDITABLE_FIELDS:
            raise ValueError(f"{field} is not editable here")
        old = getattr(order, field)
        if old != value:
            diff[field] = [_trail_value(field, old), _trail_value(field, value)]
            setattr(order, field, value)
    if diff:
        record_event(session, order.id, UPDATED, actor_id=actor_id, actor_label=actor_label, call_id=call_id,
                     details={"changes": diff})
        try:
            await session.flush()
        except StaleDataError:
            # Another save committed between our read and our write (the UPDATE matched no row at our version).
            raise Conflict(f"work order {order.number} was changed by someone else", field="version",
                           code="stale_version") from None
    return order


# Sealed at rest (callcenter.db.sealed): the trail says that the location changed, never where the elder is.
_SEALED_FIELDS = frozenset({"latitude", "longitude"})
SEALED_MARK = "(sealed)"


def _trail_value(field: str, value: object) -> object:
    if field in _SEALED_FIELDS:
        return None if value is None else SEALED_MARK
    return _plain(value)


def _plain(value: object) -> object:
    """JSON-safe values for the trail."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value  # enums
    return value
