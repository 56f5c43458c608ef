"""Three years of readings on PostgreSQL (issue 15): `make bench`, or
`.venv/bin/python -m benchmarks.readings_history --help`.

A database of its own (``--database``, default ``cc_bench15``, created on the ``--postgres`` server, migrated with
the project's migrations, dropped at the end) gets ``--elders`` elders, each with a device, and ``--readings``
readings spread evenly over the last three years (the retention) and over the elders: the monthly partitions of
``readings`` (``readings_ensure_partitions``, as the platform's job makes them) loaded with COPY into the project's
own table, the values sealed with the database's keyring as the platform seals them (a pool of ``POOL`` sealed
values is cycled: sealing ten million costs minutes and changes nothing the query reads).

Then the trend query, exactly as ``GET /elders/{id}/readings`` runs it: ``readings.services.list_readings`` for one
elder's last 90 days (all types, the route's default limit), in its own transaction, the rows opened (unsealed) as
the route returns them — ``--queries`` times, each for another elder at random. Target: ≤ 50 ms p95.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks import report
from benchmarks.sos_load import Percentiles, percentiles
from benchmarks.stack import seed_devices
from callcenter.config import normalise_database_url
from callcenter.db.session import Database
from callcenter.readings.models import ReadingType
from callcenter.readings.partitions import month_start
from callcenter.readings.services import list_readings
from tests import harness

TARGET_P95_MS = 50.0
RETENTION = dt.timedelta(days=3 * 365)
TREND = dt.timedelta(days=90)
ROUTE_LIMIT = 500  # ReadingQuery.limit's default
POOL = 5000
BATCH = 100_000
COLUMNS = ("measured_at", "elder_id", "device_id", "type", "source", "values", "received_at")
# Types in the proportions a centre sees them: blood pressure most, then heart rate, SpO2, glucose, the rest.
TYPES = ([ReadingType.BLOOD_PRESSURE] * 4 + [ReadingType.HEART_RATE] * 2
         + [ReadingType.SPO2, ReadingType.GLUCOSE, ReadingType.TEMPERATURE, ReadingType.WEIGHT, ReadingType.STEPS])


@dataclasses.dataclass
class HistoryRun:
    elders: int
    readings: int
    partitions: int
    load_seconds: float
    table_mb: float
    queries: int
    rows_per_query: Percentiles
    query_ms: Percentiles
    plan: str

    @property
    def within_target(self) -> bool:
        return self.query_ms.p95 is not None and self.query_ms.p95 <= TARGET_P95_MS


def sample_values(reading_type: ReadingType, rng: random.Random) -> dict[str, Any]:
    """Plausible values of each type (docs/device-protocol.md's units)."""
    match reading_type:
        case ReadingType.BLOOD_PRESSURE:
            systolic = rng.randint(100, 170)
            return {"systolic_mmhg": systolic, "diastolic_mmhg": systolic - rng.randint(30, 60),
                    "pulse_bpm": rng.randint(55, 95)}
        case ReadingType.HEART_RATE:
            return {"bpm": rng.randint(50, 110)}
        case ReadingType.SPO2:
            return {"percent": rng.randint(90, 100)}
        case ReadingType.GLUCOSE:
            return {"mmol_l": round(rng.uniform(4, 12), 1)}
        case ReadingType.TEMPERATURE:
            return {"celsius": round(rng.uniform(35.8, 37.8), 1)}
        case ReadingType.WEIGHT:
            return {"kg": round(rng.uniform(40, 90), 1)}
        case _:
            return {"count": rng.randint(0, 12000)}


def sealed_pool(db: Database, rng: random.Random) -> dict[ReadingType, list[str]]:
    """``POOL`` sealed values per type, sealed exactly as the column seals them (``Sealed('readings.values')``)."""
    from callcenter.readings.models import Reading

    column = Reading.__table__.c["values"].type
    dialect = db.engine.sync_engine.dialect
    return {t: [column.process_bind_param(sample_values(t, rng), dialect) for _ in range(POOL // len(TYPES) + 1)]
            for t in set(TYPES)}


def rows(elders: list[tuple[int, int]], count: int, now: dt.datetime, pool: dict[ReadingType, list[str]],
         rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """``count`` readings, elder by elder in turn, their times spread uniformly over the retention."""
    span = RETENTION.total_seconds() - 3600
    for n in range(count):
        elder_id, device_id = elders[n % len(elders)]
        reading_type = TYPES[rng.randrange(len(TYPES))]
        measured = now - dt.timedelta(seconds=rng.uniform(60, span))
        values = pool[reading_type][rng.randrange(len(pool[reading_type]))]
        yield (measured, elder_id, device_id, reading_type.value, "mqtt", values,
               measured + dt.timedelta(seconds=rng.uniform(0.1, 3)))


async def load(db: Database, pg_url: str, readings: int, elders_count: int, rng: random.Random,
               now: dt.datetime) -> tuple[list[int], int, float]:
    await seed_devices(db, elders_count)
    async with db.transaction() as session:
        elders = [(int(e), int(d)) for e, d in
                  await session.execute(text("SELECT elder_id, id FROM devices ORDER BY id"))]
        first = month_start(now - RETENTION - dt.timedelta(days=31))
        made = await session.scalar(text("SELECT readings_ensure_partitions(:first, :months)"),
                                    {"first": first, "months": 40})
    pool = sealed_pool(db, rng)
    connection = await asyncpg.connect(pg_url)
    began = time.monotonic()
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows(elders, readings, now, pool, rng):
            batch.append(row)
            if len(batch) >= BATCH:
                await connection.copy_records_to_table("readings", records=batch, columns=COLUMNS)
                batch.clear()
        if batch:
            await connection.copy_records_to_table("readings", records=batch, columns=COLUMNS)
        await connection.execute("ANALYZE readings")
    finally:
        await connection.close()
    return [e for e, _ in elders], int(made or 0), time.monotonic() - began


async def measure(db: Database, elders: list[int], queries: int, rng: random.Random,
                  now: dt.datetime) -> tuple[list[float], list[int], str]:
    times: list[float] = []
    counts: list[int] = []
    for _ in range(queries):
        elder_id = rng.choice(elders)
        started = time.perf_counter()
        async with db.transaction(read_only=True) as session:
            found = await list_readings(session, elder_id, reading_type=None, since=now - TREND, until=now,
                                        limit=ROUTE_LIMIT)
            opened = sum(len(r.values) for r in found)  # the values as the route returns them
        times.append((time.perf_counter() - started) * 1000)
        counts.append(len(found) if opened >= 0 else 0)
    async with db.transaction(read_only=True) as session:
        plan = "\n".join(row[0] for row in await session.execute(text(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM readings WHERE elder_id = :e AND measured_at >= :s "
            "AND measured_at < :u ORDER BY measured_at DESC, id DESC LIMIT 500"),
            {"e": elders[0], "s": now - TREND, "u": now}))
    return times, counts, plan


async def run(args: argparse.Namespace) -> HistoryRun:
    base = make_url(normalise_database_url(args.postgres))
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    await _admin(admin, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    await _admin(admin, f'CREATE DATABASE "{args.database}"')
    url = base.set(database=args.database).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(harness.migrated_database, url)
        db = Database(url)
        rng = random.Random(15)  # noqa: S311 -- synthetic data, the same every run
        now = dt.datetime.now(dt.UTC)
        try:
            print(f"[bench] loading {args.readings:,} readings for {args.elders:,} elders", flush=True)
            elders, made, seconds = await load(db, base.set(drivername="postgresql", database=args.database)
                                               .render_as_string(hide_password=False), args.readings, args.elders,
                                               rng, now)
            async with db.transaction(read_only=True) as session:
                size = await session.scalar(text(
                    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                    "WHERE inhparent = 'readings'::regclass"))
            print(f"[bench] loaded in {seconds:.0f} s ({made} partitions made); warming up (20 queries)", flush=True)
            await measure(db, elders, 20, rng, now)
            times, counts, plan = await measure(db, elders, args.queries, rng, now)
        finally:
            await db.engine.dispose()
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    return HistoryRun(args.elders, args.readings, made, round(seconds, 1), round(float(size or 0) / 2**20, 1),
                      args.queries, percentiles([float(c) for c in counts]), percentiles(times), plan)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readings_history", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=10_000_000, help="readings loaded (default 10,000,000)")
    parser.add_argument("--elders", type=int, default=2000, help="elders they belong to (default 2,000)")
    parser.add_argument("--queries", type=int, default=500, help="trend queries timed (default 500)")
    parser.add_argument("--database", default="cc_bench15",
                        help="the database created for the run and dropped after it (default cc_bench15)")
    report.add_common_arguments(parser, "readings_history", "about 30 s: 200,000 readings, 200 elders")
    args = parser.parse_args(argv)
    args.postgres = args.postgres or "postgresql://127.0.0.1:5432/postgres"
    if args.quick:
        args.readings, args.elders, args.queries = 200_000, 200, 200
    if args.readings < 1 or args.elders < 1 or args.queries < 1:
        parser.error("--readings, --elders and --queries must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command, started = report.start("readings_history", argv)
    result_run = asyncio.run(run(args))
    q, n = result_run.query_ms, result_run.rows_per_query
    print(f"\n[bench] {result_run.readings:,} readings, {result_run.elders:,} elders, {result_run.partitions} "
          f"partitions, {result_run.table_mb:.0f} MB, loaded in {result_run.load_seconds:.0f} s\n"
          f"[bench] 90-day trend of one elder ({result_run.queries} queries, rows p50 {n.p50}, max {n.max}): "
          f"ms p50 {q.p50} p95 {q.p95} p99 {q.p99} max {q.max}\n{result_run.plan}", flush=True)
    result = {
        **report.header(command, started, args, ""),
        "verdicts": {"target_p95_ms": TARGET_P95_MS, "p95_ms": q.p95, "target_met": result_run.within_target},
        "run": dataclasses.asdict(result_run),
    }
    return report.finish("readings_history", result, args.output)


if __name__ == "__main__":
    report.run(main)
