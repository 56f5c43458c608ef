"""Positions' retention (locations/retention.py): fixes past CC_POSITIONS_RETENTION_DAYS go, in bounded batches, the
newer stay, and a geofence's state that named a removed fix keeps its side and time."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.alarms.models import AlarmSource
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.locations.models import GeofenceState, Position
from callcenter.locations.retention import PositionRetention
from tests.unit.alarms.factory import HOME, household
from tests.unit.locations.factory import fix, home_fence, intake, raw

RETENTION = dt.timedelta(days=90)


async def _times(db: Database) -> list[dt.datetime]:
    async with db.transaction(read_only=True) as session:
        return list(await session.scalars(select(Position.measured_at).order_by(Position.measured_at)))


async def test_fixes_past_their_retention_go_in_bounded_batches_and_newer_ones_stay(db: Database) -> None:
    home = await household(db)
    fence_id = await home_fence(db, home.elder_id, hours=None)
    taking = intake(db)
    now = utcnow().replace(microsecond=0)
    sent = [now - dt.timedelta(hours=hours) for hours in (5, 4, 3, 2, 1)]
    for when in sent:
        await taking.receive_message(home.device_id, raw(fix(HOME, measured_at=when)), AlarmSource.MQTT)
    async with db.transaction(read_only=True) as session:
        state = await session.scalar(select(GeofenceState).where(GeofenceState.geofence_id == fence_id))
        assert state is not None and state.position_id is not None  # the newest fix judged

    # 90 days on less 150 minutes: the three fixes older than 2.5 h are past it. One a batch, two batches a round:
    # a round stops at its bound and the next takes the rest.
    job = PositionRetention(db, retention=RETENTION, batch=1, max_batches=2)
    later = now + RETENTION - dt.timedelta(minutes=150)
    assert await job.round(later) == 2
    assert await job.round(later) == 1
    assert await job.round(later) == 0
    assert await _times(db) == sent[3:]

    assert await PositionRetention(db, retention=RETENTION).round(now + RETENTION + dt.timedelta(minutes=1)) == 2
    assert await _times(db) == []
    async with db.transaction(read_only=True) as session:
        state = await session.scalar(select(GeofenceState).where(GeofenceState.geofence_id == fence_id))
        assert state is not None and state.position_id is None  # its side and time stay
        assert state.last_measured_at == sent[-1]
