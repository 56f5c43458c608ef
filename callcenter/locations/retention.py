"""Positions past their retention removed (CC_POSITIONS_RETENTION_DAYS): a device's fixes say where a person was,
which GB/T 35273 counts as sensitive personal information, to be kept no longer than the service needs. What the
service keeps of a place for longer is kept elsewhere: each alarm's own location (sealed, with the alarm) and each
work order's.

A round every hour removes the fixes measured before the cutoff, in batches of ``BATCH`` rows, each batch its own
short transaction (on SQLite the write turn is ``background``: an SOS or an alarm never waits behind a long delete),
at most ``MAX_BATCHES`` a round; what is left goes in the next round. A geofence's state that named a removed fix
keeps its side and time (``GeofenceState.position_id`` becomes NULL)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select

from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.locations.models import Position
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob

log = get_logger(__name__)

INTERVAL_SECONDS = 3600
BATCH = 5000
MAX_BATCHES = 200  # a round removes at most a million fixes; the rest waits for the next round


class PositionRetention:
    def __init__(self, db: Database, *, retention: dt.timedelta, batch: int = BATCH,
                 max_batches: int = MAX_BATCHES) -> None:
        self.db = db
        self.retention = retention
        self.batch = batch
        self.max_batches = max_batches
        self.job = PeriodicJob("locations.retention", self.round, first_run_seconds=60,
                               interval_seconds=INTERVAL_SECONDS)

    async def round(self, now: dt.datetime | None = None) -> int:
        """Remove the fixes measured before ``now`` minus the retention; how many were removed."""
        cutoff = (now or utcnow()) - self.retention
        removed = 0
        for _ in range(self.max_batches):
            async with self.db.transaction(background=True) as session:
                ids = list(await session.scalars(select(Position.id).where(Position.measured_at < cutoff)
                                                 .order_by(Position.id).limit(self.batch)))
                if ids:
                    await session.execute(delete(Position).where(Position.id.in_(ids)))
            removed += len(ids)
            if len(ids) < self.batch:
                break
        if removed:
            log.info("locations.positions_removed", removed=removed, cutoff=cutoff.isoformat())
        return removed

    async def start(self) -> None:
        await self.job.start()

    async def stop(self) -> None:
        await self.job.stop()
