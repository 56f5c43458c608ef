"""The readings' storage over time: monthly partitions made ahead of time on PostgreSQL, and readings older than
CC_READINGS_RETENTION_DAYS (three years by default) removed — whole months dropped, not deleted row by row.

On PostgreSQL ``readings`` is partitioned by range on ``measured_at``, one partition per calendar month in UTC,
named ``reading_partitions.readings_YYYY_MM`` (a schema of their own, so the application's schema holds only the
models' tables). The SQL function ``readings_ensure_partitions(first_month date, months integer)`` (migration
0016) makes the months missing from ``first_month`` on and returns how many it made; the migration runs it for the
months around its own date and ``PartitionJob`` every few hours for the current month and
CC_READINGS_PARTITIONS_AHEAD months after it. A ``readings_default`` partition takes what no month holds (a
reading from before the first partition, or a month not made because the platform was down): when that month is
made later, the function moves its rows out of the default partition first, so making it never fails.

On SQLite ``readings`` is one table and the retention is a DELETE.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob
from callcenter.readings.models import Reading, ReadingMessage

log = get_logger(__name__)

SCHEMA = "reading_partitions"
_MONTH = re.compile(r"readings_(\d{4})_(\d{2})")
INTERVAL_SECONDS = 6 * 3600


def month_start(moment: dt.datetime) -> dt.date:
    utc = moment.astimezone(dt.UTC)
    return dt.date(utc.year, utc.month, 1)


def _next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


async def ensure_partitions(session: AsyncSession, *, now: dt.datetime, months_ahead: int) -> int:
    """PostgreSQL: this month's partition and ``months_ahead`` more, made if missing; how many were made. Nothing
    on SQLite."""
    if session.bind.dialect.name != "postgresql":
        return 0
    made = await session.scalar(text("SELECT readings_ensure_partitions(:first, :months)"),
                                {"first": month_start(now), "months": months_ahead + 1})
    return int(made or 0)


async def partitions(session: AsyncSession) -> list[str]:
    """PostgreSQL: the readings' partitions by name (the monthly ones and the default), in order."""
    rows = await session.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.inhparent = 'readings'::regclass AND n.nspname = :schema ORDER BY c.relname"), {"schema": SCHEMA})
    return [row[0] for row in rows]


async def remove_expired(session: AsyncSession, *, cutoff: dt.datetime) -> int:
    """Readings measured before ``cutoff``, and their message ids, removed: on PostgreSQL every month wholly
    before it is dropped, the rest deleted. How many monthly partitions were dropped."""
    dropped = 0
    if session.bind.dialect.name == "postgresql":
        for name in await partitions(session):
            match = _MONTH.fullmatch(name)
            if match is None:
                continue
            end = _next_month(dt.date(int(match[1]), int(match[2]), 1))
            if dt.datetime(end.year, end.month, 1, tzinfo=dt.UTC) <= cutoff:
                await session.execute(text(f'DROP TABLE "{SCHEMA}"."{name}"'))
                dropped += 1
    await session.execute(delete(Reading).where(Reading.measured_at < cutoff))
    await session.execute(delete(ReadingMessage).where(ReadingMessage.measured_at < cutoff))
    return dropped


class PartitionJob:
    """Every few hours: the coming months' partitions, and the expired readings gone."""

    def __init__(self, db: Database, *, retention: dt.timedelta, months_ahead: int) -> None:
        self.db = db
        self.retention = retention
        self.months_ahead = months_ahead
        self.job = PeriodicJob("readings.partitions", self.round, first_run_seconds=5,
                               interval_seconds=INTERVAL_SECONDS)

    async def round(self) -> None:
        now = utcnow()
        async with self.db.transaction() as session:
            made = await ensure_partitions(session, now=now, months_ahead=self.months_ahead)
            dropped = await remove_expired(session, cutoff=now - self.retention)
        if made or dropped:
            log.info("readings.partitions", made=made, dropped=dropped)

    async def start(self) -> None:
        await self.job.start()

    async def stop(self) -> None:
        await self.job.stop()
