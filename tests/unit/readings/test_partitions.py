"""The readings' storage over time: on PostgreSQL the table is partitioned by month, the months around now exist,
each reading lands in its month's partition, a month made late takes its rows out of the default partition, and
expired months are dropped; on SQLite (a plain table) expired readings are deleted."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from callcenter.db.session import Database
from callcenter.readings.models import Reading, ReadingMessage, ReadingSource
from callcenter.readings.partitions import (
    SCHEMA,
    PartitionJob,
    ensure_partitions,
    month_start,
    partitions,
    remove_expired,
)
from tests.unit.alarms.factory import household
from tests.unit.readings.factory import RETENTION, intake, raw, reading


def _name(month: dt.date) -> str:
    return f"readings_{month:%Y_%m}"


def _add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


async def _partition_of(db: Database, reading_id: int) -> str:
    async with db.transaction(read_only=True) as session:
        return str((await session.execute(text("SELECT tableoid::regclass::text FROM readings WHERE id = :id"),
                                          {"id": reading_id})).scalar_one())


async def test_readings_land_in_their_months_and_expire_with_them(db: Database) -> None:
    home = await household(db)
    taking = intake(db)
    now = dt.datetime.now(dt.UTC)
    this_month = month_start(now)
    old_time = dt.datetime.combine(_add_months(this_month, -20), dt.time(12), tzinfo=dt.UTC)
    recent = await taking.receive_message(home.device_id, raw(reading("spo2", {"percent": 97})), ReadingSource.MQTT)
    old = await taking.receive_message(home.device_id, raw(reading("spo2", {"percent": 96}, measured_at=old_time)),
                                       ReadingSource.MQTT)
    postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        async with db.transaction(read_only=True) as session:
            names = await partitions(session)
        # The migration made last month to three months ahead, and the default partition for the rest.
        assert {_name(_add_months(this_month, step)) for step in range(-1, 4)} | {"readings_default"} <= set(names)
        assert await _partition_of(db, recent.reading_id) == f"{SCHEMA}.{_name(this_month)}"
        assert await _partition_of(db, old.reading_id) == f"{SCHEMA}.readings_default"
        async with db.transaction() as session:  # that month made late: its reading moves into it
            made = await session.scalar(text("SELECT readings_ensure_partitions(:month, 1)"),
                                        {"month": month_start(old_time)})
        assert made == 1
        assert await _partition_of(db, old.reading_id) == f"{SCHEMA}.{_name(month_start(old_time))}"
        async with db.transaction() as session:  # the job's own round: the months ahead, nothing twice
            assert await ensure_partitions(session, now=now, months_ahead=5) == 2
            assert await ensure_partitions(session, now=now, months_ahead=5) == 0
            assert _name(_add_months(this_month, 5)) in await partitions(session)
        # The index serving one elder's readings of one type over a range is on every partition.
        async with db.transaction(read_only=True) as session:
            indexed = (await session.execute(text(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = :schema AND indexdef LIKE "
                "'%(elder_id, type, measured_at)%'"), {"schema": SCHEMA})).scalar_one()
            assert indexed == len(await partitions(session))

    # Three years on, the old month has expired: dropped whole on PostgreSQL, deleted on SQLite.
    job = PartitionJob(db, retention=RETENTION, months_ahead=3)
    async with db.transaction() as session:
        dropped = await remove_expired(session, cutoff=dt.datetime.combine(
            _add_months(month_start(old_time), 1), dt.time(), tzinfo=dt.UTC))
    assert dropped == (1 if postgresql else 0)
    async with db.transaction(read_only=True) as session:
        assert list(await session.scalars(select(Reading.id))) == [recent.reading_id]
        assert len(list(await session.scalars(select(ReadingMessage.message_id)))) == 1
        if postgresql:
            assert _name(month_start(old_time)) not in await partitions(session)
    await job.round()  # a round on a current database: nothing more to do, nothing lost
    async with db.transaction(read_only=True) as session:
        assert list(await session.scalars(select(Reading.id))) == [recent.reading_id]
