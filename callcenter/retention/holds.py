"""Legal holds: setting and lifting them, and which calls and recordings they protect.

A hold on a call protects the call's log and its recordings. A hold on a work order (a complaint is a work order of
kind ``complaint``) protects the call it was raised from and every call its trail mentions, with their recordings.
A recording's own ``legal_hold`` protects that recording (and so its call's log). While anything protects them,
retention removes neither, whatever their age.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Protocol

from sqlalchemy import or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import NotFound
from callcenter.audit import services as audit
from callcenter.audit.services import Actor
from callcenter.calls.models import Call
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderEvent
from callcenter.orders.trail import record_event
from callcenter.recordings.models import Recording
from callcenter.recordings.storage import RecordingStore

log = get_logger(__name__)

HoldTarget = Call | WorkOrder
TARGETS: dict[str, type[Call] | type[WorkOrder]] = {"call": Call, "work_order": WorkOrder}


class StoreLookup(Protocol):
    """The store of each backend: ``recordings.backends.RecordingStores`` or a plain ``{backend: store}``."""

    def get(self, backend: str, /) -> RecordingStore | None: ...


def store_lookup(stores: object) -> StoreLookup:
    """A registry of stores as it is, a single store as a registry of one."""
    if hasattr(stores, "get"):
        return stores  # type: ignore[return-value]
    store: RecordingStore = stores  # type: ignore[assignment]
    return {store.backend: store}


async def held_call_ids(session: AsyncSession, call_ids: Collection[int]) -> set[int]:
    """Those of ``call_ids`` a legal hold protects: on the call, on a work order raised from it or whose trail
    mentions it, or on one of its recordings."""
    if not call_ids:
        return set()
    ids = list(call_ids)
    held_orders = select(WorkOrder.id).where(WorkOrder.legal_hold.is_(True))
    statements = [
        select(Call.id).where(Call.id.in_(ids), Call.legal_hold.is_(True)),
        select(WorkOrder.call_id).where(WorkOrder.call_id.in_(ids), WorkOrder.legal_hold.is_(True)),
        select(WorkOrderEvent.call_id).where(WorkOrderEvent.call_id.in_(ids),
                                             WorkOrderEvent.work_order_id.in_(held_orders)),
        select(Recording.call_id).where(Recording.call_id.in_(ids), Recording.legal_hold.is_(True)),
    ]
    held: set[int] = set()
    for statement in statements:
        held.update(value for value in (await session.scalars(statement)).all() if value is not None)
    return held


async def protected_call_ids(session: AsyncSession, target: HoldTarget) -> set[int]:
    """The calls whose logs and recordings a hold on ``target`` would protect."""
    if isinstance(target, Call):
        return {target.id}
    mentioned = await session.scalars(select(WorkOrderEvent.call_id).where(
        WorkOrderEvent.work_order_id == target.id, WorkOrderEvent.call_id.is_not(None)))
    return {*mentioned.all(), *([target.call_id] if target.call_id is not None else [])}


async def get_target(session: AsyncSession, kind: str, target_id: int, *, lock: bool = False) -> HoldTarget:
    model = TARGETS[kind]
    statement = select(model).where(model.id == target_id)
    found = await session.scalar(statement.with_for_update() if lock else statement)
    if found is None:
        raise NotFound(f"no {kind.replace('_', ' ')} {target_id}", field="id")
    return found


def set_hold(session: AsyncSession, target: HoldTarget, *, reason: str, actor: Actor, now: dt.datetime) -> None:
    """Place (or re-word) a hold; audited, and on a work order's trail."""
    previous = target.legal_hold_reason if target.legal_hold else None
    target.legal_hold = True
    target.legal_hold_reason = reason
    target.legal_hold_by_id = actor.id
    target.legal_hold_by = actor.label[:100]
    target.legal_hold_at = now
    _trace(session, target, actor, action="legal_hold.set", details={"reason": reason, "previous_reason": previous})


def clear_hold(session: AsyncSession, target: HoldTarget, *, reason: str, actor: Actor) -> bool:
    """Lift a hold; False (and nothing written) when there was none."""
    if not target.legal_hold:
        return False
    details = {"reason": reason, "hold_reason": target.legal_hold_reason, "held_by": target.legal_hold_by,
               "held_at": target.legal_hold_at.isoformat() if target.legal_hold_at else None}
    target.legal_hold = False
    target.legal_hold_reason = target.legal_hold_by = None
    target.legal_hold_by_id = None
    target.legal_hold_at = None
    _trace(session, target, actor, action="legal_hold.cleared", details=details)
    return True


def _trace(session: AsyncSession, target: HoldTarget, actor: Actor, *, action: str, details: dict[str, object]) -> None:
    kind = "call" if isinstance(target, Call) else "work_order"
    audit.record(session, actor, action=action, target_type=kind, target_id=target.id, details=details)
    if isinstance(target, WorkOrder):
        record_event(session, target.id, action.replace(".", "_"), actor_id=actor.id, actor_label=actor.label,
                     details=details)


async def recordings_of(session: AsyncSession, call_ids: Iterable[int], *, lock: bool = False) -> list[Recording]:
    """The recordings of these calls whose audio is still stored."""
    ids = list(call_ids)
    if not ids:
        return []
    statement = select(Recording).where(Recording.call_id.in_(ids), Recording.deleted_at.is_(None))
    if lock:
        statement = statement.with_for_update()
    return list((await session.scalars(statement.order_by(Recording.id))).all())


async def protected_recordings(session: AsyncSession) -> list[Recording]:
    """Every stored recording a hold protects (for re-tagging objects in stores that expire them on their own)."""
    held_orders = select(WorkOrder.id).where(WorkOrder.legal_hold.is_(True))
    held_calls = union(select(Call.id).where(Call.legal_hold.is_(True)),
                       select(WorkOrder.call_id).where(WorkOrder.legal_hold.is_(True), WorkOrder.call_id.is_not(None)),
                       select(WorkOrderEvent.call_id).where(WorkOrderEvent.work_order_id.in_(held_orders),
                                                            WorkOrderEvent.call_id.is_not(None)))
    return list((await session.scalars(select(Recording).where(
        Recording.deleted_at.is_(None), or_(Recording.legal_hold.is_(True), Recording.call_id.in_(held_calls)))
        .order_by(Recording.id))).all())


async def tag_recordings(stores: StoreLookup, recordings: Iterable[Recording], held: Collection[int]) -> int:
    """Tell each recording's store whether it is held (S3 then keeps a held object out of its lifecycle rule).

    ``held``: the ids of the recordings that are. A store that cannot be reached is logged and retried by the next
    retention run; returns how many could not be tagged."""
    failed = 0
    for recording in recordings:
        store = stores.get(recording.storage_backend)
        tag = getattr(store, "set_legal_hold", None)
        if tag is None:
            continue
        try:
            await tag(recording.storage_key, recording.id in held)
        except Exception as error:
            failed += 1
            log.error("retention.hold_tag_failed", recording_id=recording.id, serial=recording.serial_number,
                      backend=recording.storage_backend, held=recording.id in held, error=str(error)[-300:],
                      error_type=type(error).__name__)
    return failed
