"""Elders' tracks and geofences: read and kept in the caller's transaction (socket-free). Every change of a fence is
audited (``geofence.*``: the fence's name and kind, never its coordinates); reads are audited by the handlers as
reads of the elder's file (``elders.access``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.db.base import utcnow
from callcenter.locations.fences import geometry_of, hhmm
from callcenter.locations.geometry import BadArea, Circle, LatLon, circle, polygon
from callcenter.locations.models import FenceShape, Geofence, GeofenceState, Position
from callcenter.locations.schemas import (
    AllowedHours,
    Area,
    CircleArea,
    FenceStateOut,
    GeofenceCreate,
    GeofenceOut,
    GeofencePatch,
    HoursOut,
    PositionOut,
    minutes,
)

DEFAULT_PERIOD = dt.timedelta(hours=24)


# --- positions -------------------------------------------------------------------------------------------------

def position_out(position: Position) -> PositionOut:
    return PositionOut(id=position.id, device_id=position.device_id, measured_at=position.measured_at,
                       received_at=position.received_at, accuracy_m=position.accuracy_m, source=position.source,
                       **position.fix)


async def latest_position(session: AsyncSession, elder_id: int) -> Position | None:
    return await session.scalar(select(Position).where(Position.elder_id == elder_id)
                                .order_by(Position.measured_at.desc(), Position.id.desc()).limit(1))


async def track(session: AsyncSession, elder_id: int, *, since: dt.datetime, until: dt.datetime,
                limit: int) -> tuple[list[Position], bool]:
    """The elder's fixes measured in [since, until], oldest first: the newest ``limit`` of them, and whether there
    were more."""
    rows = (await session.scalars(
        select(Position).where(Position.elder_id == elder_id, Position.measured_at >= since,
                               Position.measured_at <= until)
        .order_by(Position.measured_at.desc(), Position.id.desc()).limit(limit + 1))).all()
    return list(reversed(rows[:limit])), len(rows) > limit


def period(since: dt.datetime | None, until: dt.datetime | None,
           now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    until = until or now or utcnow()
    since = since or until - DEFAULT_PERIOD
    if since > until:
        raise Invalid("since is later than until", field="since")
    return since, until


# --- geofences -------------------------------------------------------------------------------------------------

def _area(area: Area) -> tuple[FenceShape, dict[str, Any]]:
    """The area as stored, checked as a fence (422 naming the part at fault)."""
    try:
        if isinstance(area, CircleArea):
            circle(LatLon(area.center.lat, area.center.lon), area.radius_m)
            return FenceShape.CIRCLE, {"center": area.center.model_dump(), "radius_m": area.radius_m}
        polygon([LatLon(p.lat, p.lon) for p in area.points])
        return FenceShape.POLYGON, {"points": [p.model_dump() for p in area.points]}
    except BadArea as bad:
        raise Invalid(str(bad), field=f"area.{bad.field}") from None


def _hours(hours: AllowedHours | None) -> tuple[int | None, int | None]:
    return (None, None) if hours is None else (minutes(hours.start), minutes(hours.end))


async def get_fence(session: AsyncSession, elder_id: int, fence_id: int, *, lock: bool = False) -> Geofence:
    fence = await session.get(Geofence, fence_id, with_for_update=lock)
    if fence is None or fence.elder_id != elder_id:
        raise NotFound(f"elder {elder_id} has no geofence {fence_id}", field="fence_id")
    return fence


async def fences_of(session: AsyncSession, elder_id: int) -> list[Geofence]:
    return list((await session.scalars(select(Geofence).where(Geofence.elder_id == elder_id)
                                       .order_by(Geofence.id))).all())


async def create_fence(session: AsyncSession, elder_id: int, body: GeofenceCreate, actor: Actor) -> Geofence:
    shape, area = _area(body.area)
    start, end = _hours(body.allowed_hours)
    now = utcnow()
    fence = Geofence(elder_id=elder_id, name=body.name, kind=body.kind, shape=shape, area=area, allowed_from=start,
                     allowed_until=end, active=body.active, created_at=now, updated_at=now, version=1)
    session.add(fence)
    await session.flush()
    record(session, actor, action="geofence.create", target_type="elder", target_id=elder_id,
           details={"geofence_id": fence.id, "name": fence.name, "kind": fence.kind.value, "shape": shape.value,
                    "allowed_hours": _hours_text(fence), "active": fence.active})
    return fence


async def update_fence(session: AsyncSession, elder_id: int, fence_id: int, body: GeofencePatch,
                       actor: Actor) -> Geofence:
    fence = await get_fence(session, elder_id, fence_id, lock=True)
    if fence.version != body.version:
        raise Conflict(f"geofence {fence_id} was changed by someone else (now version {fence.version})",
                       field="version", code="stale_version")
    given = body.model_fields_set - {"version"}
    for name in ("name", "kind", "active", "area"):
        if name in given and getattr(body, name) is None:
            raise Invalid(f"{name} cannot be null", field=name)
    changed: list[str] = []
    if "name" in given and body.name != fence.name:
        fence.name = body.name
        changed.append("name")
    if "kind" in given and body.kind is not fence.kind:
        fence.kind = body.kind  # type: ignore[assignment]
        changed.append("kind")
    if "area" in given:
        fence.shape, fence.area = _area(body.area)  # type: ignore[arg-type]
        changed.append("area")
    if "allowed_hours" in given and _hours(body.allowed_hours) != (fence.allowed_from, fence.allowed_until):
        fence.allowed_from, fence.allowed_until = _hours(body.allowed_hours)
        changed.append("allowed_hours")
    if "active" in given and body.active is not fence.active:
        fence.active = bool(body.active)
        changed.append("active")
    if not changed:
        return fence
    if {"kind", "area", "active"} & set(changed):  # the state was about another line: forget it
        await session.execute(delete(GeofenceState).where(GeofenceState.geofence_id == fence.id))
    fence.version += 1
    fence.updated_at = utcnow()
    record(session, actor, action="geofence.update", target_type="elder", target_id=elder_id,
           details={"geofence_id": fence.id, "changed": changed, "kind": fence.kind.value,
                    "allowed_hours": _hours_text(fence), "active": fence.active})
    await session.flush()
    return fence


async def delete_fence(session: AsyncSession, elder_id: int, fence_id: int, actor: Actor) -> None:
    fence = await get_fence(session, elder_id, fence_id, lock=True)
    record(session, actor, action="geofence.delete", target_type="elder", target_id=elder_id,
           details={"geofence_id": fence.id, "name": fence.name, "kind": fence.kind.value})
    await session.execute(delete(GeofenceState).where(GeofenceState.geofence_id == fence.id))
    await session.delete(fence)
    await session.flush()


def _hours_text(fence: Geofence) -> str | None:
    return None if fence.allowed_from is None else f"{hhmm(fence.allowed_from)}-{hhmm(fence.allowed_until)}"


async def fence_out(session: AsyncSession, fence: Geofence) -> GeofenceOut:
    state = await session.get(GeofenceState, fence.id)
    geometry = geometry_of(fence)
    hours = None if fence.allowed_from is None or fence.allowed_until is None else HoursOut(
        start=hhmm(fence.allowed_from) or "", end=hhmm(fence.allowed_until) or "")
    return GeofenceOut(
        id=fence.id, elder_id=fence.elder_id, name=fence.name, kind=fence.kind, shape=fence.shape, area=fence.area,
        geometry=geometry.geojson(), radius_m=geometry.radius_m if isinstance(geometry, Circle) else None,
        allowed_hours=hours, active=fence.active,
        state=FenceStateOut.model_validate(state) if state is not None else None,
        created_at=fence.created_at, updated_at=fence.updated_at, version=fence.version)
