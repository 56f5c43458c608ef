"""The recordings' database side: which call a recording belongs to, and registering a stored recording."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Call
from callcenter.orders.models import WorkOrder, WorkOrderEvent
from callcenter.orders.trail import SYSTEM, record_event
from callcenter.recordings.models import Recording

# The dialplan's serials: <kind>-<UTC YYYYmmddHHMMSS>-<the linkedid's digits> (SOS-…, CB-…).
_SERIAL = re.compile(r"^[A-Za-z]+-(?P<time>\d{14})-(?P<linkedid>\d+)$")


@dataclasses.dataclass(frozen=True, slots=True)
class SerialParts:
    started_at: dt.datetime | None
    linkedid_digits: str | None


def parse_serial(serial: str) -> SerialParts:
    match = _SERIAL.match(serial)
    if match is None:
        return SerialParts(None, None)
    try:
        started = dt.datetime.strptime(match["time"], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        started = None
    return SerialParts(started, match["linkedid"])


async def call_for_serial(session: AsyncSession, serial: str) -> Call | None:
    """The call the AGI stamped with this serial; else the one whose linkedid the serial carries (callbacks and
    calls reconciled from the CDR are not stamped)."""
    call = await session.scalar(select(Call).where(Call.recording_serial == serial)
                                .order_by(Call.id.desc()).limit(1))
    if call is not None:
        return call
    digits = parse_serial(serial).linkedid_digits
    if not digits:
        return None
    found = (await session.scalars(select(Call).where(func.replace(Call.linkedid, ".", "") == digits)
                                   .limit(2))).all()
    return found[0] if len(found) == 1 else None


async def recording_by_serial(session: AsyncSession, serial: str) -> Recording | None:
    return await session.scalar(select(Recording).where(Recording.serial_number == serial))


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRecording:
    serial: str
    call_id: int | None
    backend: str
    key: str
    audio_format: str
    duration_seconds: float
    size_bytes: int
    sha256: str


async def register(session: AsyncSession, stored: StoredRecording, *, retention_days: int,
                   now: dt.datetime) -> Recording:
    """Insert the recording's row, or bring an existing row of the same serial up to date with what is stored.

    Idempotent: the serial number is unique, so a rerun after a crash finds the row instead of adding one.
    """
    recording = await recording_by_serial(session, stored.serial)
    if recording is None:
        recording = Recording(serial_number=stored.serial, created_at=now,
                              expires_at=now + dt.timedelta(days=retention_days))
        _apply(recording, stored)
        try:
            async with session.begin_nested():
                session.add(recording)
        except IntegrityError:
            existing = await recording_by_serial(session, stored.serial)
            if existing is None:
                raise
            recording = existing
        else:
            return recording
    _apply(recording, stored)
    return recording


def _apply(recording: Recording, stored: StoredRecording) -> None:
    recording.call_id = recording.call_id or stored.call_id
    recording.storage_backend = stored.backend
    recording.storage_key = stored.key
    recording.audio_format = stored.audio_format
    recording.duration_seconds = stored.duration_seconds
    recording.size_bytes = stored.size_bytes
    recording.sha256 = stored.sha256


# The trail action that says a call's recording holds no audio (docs/reliability.md, "disk full").
MISSING_ACTION = "recording_missing"


async def flag_missing(session: AsyncSession, *, call_id: int, serial: str, reason: str) -> list[int]:
    """Write ``recording_missing`` on the trail of every work order of the call (the SOS's emergency order, an IVR
    order); the ids of those orders. Idempotent: an order already flagged for this call is not flagged again."""
    # The orders' rows are locked (PostgreSQL; SQLite has one writer anyway), so two flaggings of the same call at
    # once wait for each other and the second finds the first's entry.
    orders = list((await session.scalars(select(WorkOrder.id).where(WorkOrder.call_id == call_id)
                                         .order_by(WorkOrder.id).with_for_update())).all())
    if not orders:
        return []
    flagged = set((await session.scalars(
        select(WorkOrderEvent.work_order_id).where(WorkOrderEvent.work_order_id.in_(orders),
                                                   WorkOrderEvent.call_id == call_id,
                                                   WorkOrderEvent.action == MISSING_ACTION))).all())
    for order_id in orders:
        if order_id not in flagged:
            record_event(session, order_id, MISSING_ACTION, actor_label=SYSTEM, call_id=call_id,
                         details={"recording_serial": serial, "reason": reason})
    return orders
