"""Geofence crossings: each new fix of an elder's device judged against the elder's active fences, and a geofence
alarm raised through the alarms domain when one is crossed outside its allowed hours.

**Semantics.** A ``stay_inside`` fence (home and its streets) forbids being *outside* it; a ``keep_out`` fence (a
river bank, a main road) forbids being *inside* it. The allowed hours (minutes of the centre's day, CC_TIMEZONE; a
window may run over midnight; none: never allowed) are when the forbidden side is allowed: "may be out between 07:00
and 20:00".

**Transitions, once.** Each fence keeps the side its elder was last known on (``GeofenceState``), moved only by a
fix that is *certainly* on one side (the accuracy rule, ``geometry``) and newer than the last fix judged (a
resent or late old fix is stored in the track and judges nothing). A fix certainly on the forbidden side, taken
(on the device's clock) outside the allowed hours, raises one alarm for the whole stay there: an exit (or entry)
seen as it happens, or the first fix after the allowed hours ended while the elder is still out (``crossing_seen``
false, e.g. left at 19:00, still out at 20:05). Later fixes on that side raise nothing; a fix certainly back on the
permitted side ends the stay, and the next crossing may alarm again. A fence's first fix counts like a crossing
from the permitted side: an elder first seen outside at night is an alarm. Changing a fence's area, kind or
activity forgets its state.

The alarm is raised with ``alarms.services.raise_alarm`` in the position's transaction (its emergency work order,
audit entry, merge rule): while a geofence alarm of the same device is open and its last repeat is within
CC_ALARM_MERGE_SECONDS, a new crossing is counted on it as a repeat, as the alarm intake merges a device's repeats.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.models import Alarm, AlarmSource, AlarmState, AlarmType
from callcenter.alarms.services import raise_alarm, severity_for
from callcenter.audit.services import Actor
from callcenter.devices.models import Device
from callcenter.elders.models import Elder
from callcenter.locations.geometry import FenceGeometry, LatLon, Side, circle, polygon
from callcenter.locations.models import FenceKind, FenceShape, FenceSide, Geofence, GeofenceState, Position

FORBIDDEN = {FenceKind.STAY_INSIDE: FenceSide.OUTSIDE, FenceKind.KEEP_OUT: FenceSide.INSIDE}
EVENT = {FenceKind.STAY_INSIDE: "exit", FenceKind.KEEP_OUT: "entry"}
MINUTES_A_DAY = 24 * 60


def geometry_of(fence: Geofence) -> FenceGeometry:
    area = fence.area
    if fence.shape is FenceShape.CIRCLE:
        return circle(LatLon(area["center"]["lat"], area["center"]["lon"]), area["radius_m"])
    return polygon([LatLon(p["lat"], p["lon"]) for p in area["points"]])


def hhmm(minutes: int | None) -> str | None:
    return None if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"


def allowed_at(fence: Geofence, when: dt.datetime, tz: ZoneInfo) -> bool:
    """Whether ``when`` falls in the fence's allowed hours on the centre's clock (from inclusive, until not)."""
    start, end = fence.allowed_from, fence.allowed_until
    if start is None or end is None:
        return False
    local = when.astimezone(tz)
    minute = local.hour * 60 + local.minute
    return start <= minute < end if start < end else minute >= start or minute < end


@dataclasses.dataclass(frozen=True, slots=True)
class Crossing:
    """A fence crossed outside its hours: the alarm it raised, or the open one it was counted on."""

    geofence_id: int
    alarm_id: int
    merged: bool


async def judge(session: AsyncSession, position: Position, device: Device, *, tz: ZoneInfo,
                merge_window: dt.timedelta, now: dt.datetime) -> list[Crossing]:
    """Judge a stored fix against its elder's active fences (see the module), in the caller's transaction."""
    if position.elder_id is None:
        return []
    fences = (await session.scalars(select(Geofence).where(Geofence.elder_id == position.elder_id,
                                                           Geofence.active.is_(True))
                                    .order_by(Geofence.id))).all()
    if not fences:
        return []
    states = {state.geofence_id: state for state in await session.scalars(
        select(GeofenceState).where(GeofenceState.geofence_id.in_([f.id for f in fences])).with_for_update())}
    here = LatLon(position.fix["lat"], position.fix["lon"])
    crossings = []
    for fence in fences:
        state = states.get(fence.id)
        if state is not None and position.measured_at <= state.last_measured_at:
            continue  # an older fix than the one the state rests on: it cannot move it
        side = geometry_of(fence).side_of(here, position.accuracy_m)
        if side is Side.UNCERTAIN:
            continue
        fence_side = FenceSide(side.value)
        moved = state is None or state.side is not fence_side
        if state is None:
            state = GeofenceState(geofence_id=fence.id, side=fence_side, since=position.measured_at)
            session.add(state)
        elif moved:
            state.side, state.since, state.alarm_id = fence_side, position.measured_at, None
        state.last_measured_at, state.position_id = position.measured_at, position.id
        if fence_side is FORBIDDEN[fence.kind] and state.alarm_id is None \
                and not allowed_at(fence, position.measured_at, tz):
            crossing = await _alarm(session, fence, state, position, device, moved=moved, tz=tz,
                                    merge_window=merge_window, now=now)
            state.alarm_id = crossing.alarm_id
            crossings.append(crossing)
    await session.flush()
    return crossings


def _payload(fence: Geofence, state: GeofenceState, position: Position, *, moved: bool) -> dict[str, Any]:
    return {"geofence_id": fence.id, "geofence_name": fence.name, "kind": fence.kind.value,
            "event": EVENT[fence.kind], "crossing_seen": moved,
            "crossed_at": state.since.isoformat(), "measured_at": position.measured_at.isoformat(),
            "allowed_from": hhmm(fence.allowed_from), "allowed_until": hhmm(fence.allowed_until),
            "position_id": position.id, "position_message_id": position.message_id}


async def _alarm(session: AsyncSession, fence: Geofence, state: GeofenceState, position: Position, device: Device,
                 *, moved: bool, tz: ZoneInfo, merge_window: dt.timedelta, now: dt.datetime) -> Crossing:
    location = {"latitude": position.fix["lat"], "longitude": position.fix["lon"],
                "accuracy_m": position.accuracy_m, "source": position.source.value}
    open_alarm = None
    if merge_window > dt.timedelta(0):
        open_alarm = await session.scalar(
            select(Alarm).where(Alarm.device_id == device.id, Alarm.type == AlarmType.GEOFENCE,
                                Alarm.state != AlarmState.RESOLVED, Alarm.last_received_at >= now - merge_window)
            .order_by(Alarm.id.desc()).limit(1).with_for_update())
    if open_alarm is not None:
        open_alarm.repeat_count += 1
        open_alarm.last_received_at = now
        open_alarm.location = location
        return Crossing(fence.id, open_alarm.id, merged=True)
    transport = AlarmSource(position.transport)
    elder = await session.get(Elder, position.elder_id)
    alarm = await raise_alarm(session, alarm_type=AlarmType.GEOFENCE, severity=severity_for(AlarmType.GEOFENCE, None),
                              source=transport, elder=elder, device=device, occurred_at=position.measured_at,
                              location=location, payload=_payload(fence, state, position, moved=moved),
                              actor=Actor(None, f"device {device.id} ({transport.value})"), now=now, tz=tz)
    return Crossing(fence.id, alarm.id, merged=False)
