"""The platform's data keys (callcenter.db.keyring) over every plugin's sealed columns: opening them for a process
(``callcenter serve`` and every command), checking that they open what the database holds, and rotating them
(``callcenter keys rotate``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, and_, column, func, inspect, literal, select, table, update
from sqlalchemy.sql.expression import cast

from callcenter.config import Settings
from callcenter.db.keyring import PREFIX, RELOAD_SECONDS, Keyring, KeyringError, load_or_create, write_key_file
from callcenter.db.sealed import sealed_columns
from callcenter.db.session import Database, create_engine
from callcenter.logs import get_logger
from callcenter.plugins import metadata

log = get_logger(__name__)

ROTATION_PASSES = 20  # a pass re-seals what the one before missed (rows changed meanwhile); bounded


@dataclass(frozen=True)
class SealedColumn:
    table: str
    name: str
    purpose: str


def schema_sealed_columns() -> list[SealedColumn]:
    return [SealedColumn(table_name, col.name, kind.purpose) for table_name, col, kind in sealed_columns(metadata())]


def _raw(target: SealedColumn) -> Any:
    """The column as stored (text), around the sealing type: rotation works on sealed values, not plain ones."""
    return table(target.table, column("id"), column(target.name, Text()))


async def holds_sealed_data(database_url: str) -> bool:
    """Whether any value in the database is sealed already (then a missing key file must be restored, never
    replaced). Values of a schema before sealing (migration 0013) are plain and do not count."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
            for target in schema_sealed_columns():
                if target.table not in tables:
                    continue
                raw = _raw(target)
                found = await connection.scalar(select(literal(1)).select_from(raw).where(
                    cast(raw.c[target.name], Text()).like(f"{PREFIX}:%")).limit(1))
                if found:
                    return True
        return False
    finally:
        await engine.dispose()


async def platform_keyring(settings: Settings) -> Keyring:
    """The keys of CC_DATA_KEY_FILE; made on first use when nothing is sealed yet (a new installation)."""
    path = settings.data_key_path
    if path.exists():
        return Keyring.load(path)
    keyring, made = load_or_create(path, may_create=not await holds_sealed_data(settings.database_url))
    if made:
        log.warning("keys.created", path=str(path), hint="back this file up apart from the database")
    return keyring


async def open_database(settings: Settings) -> Database:
    return Database(settings.database_url, await platform_keyring(settings))


async def check_keys_open_data(db: Database) -> None:
    """One stored value of every sealed column must open: a wrong or stale key file is refused at start, not found
    by the first SOS whose elder file cannot be read."""
    async with db.engine.connect() as connection:
        for target in schema_sealed_columns():
            raw = _raw(target)
            value = await connection.scalar(select(raw.c[target.name]).where(raw.c[target.name].is_not(None))
                                            .limit(1))
            if value is not None:
                db.keyring.open(value, target.purpose)


@dataclass
class KeyUsage:
    current: str
    key_ids: list[str]
    by_key: dict[str, int] = field(default_factory=dict)  # key id -> values it sealed


async def key_usage(db: Database) -> KeyUsage:
    usage = KeyUsage(db.keyring.current, sorted(db.keyring.key_ids()))
    async with db.engine.connect() as connection:
        for target in schema_sealed_columns():
            raw = _raw(target)
            rows = await connection.stream(select(raw.c[target.name]).where(raw.c[target.name].is_not(None)))
            async for (value,) in rows:
                key_id = Keyring.key_id_of(value)
                usage.by_key[key_id] = usage.by_key.get(key_id, 0) + 1
    return usage


@dataclass
class Rotation:
    new_key: str
    resealed: int
    passes: int


async def _stale(db: Database, target: SealedColumn, current: str) -> int:
    raw = _raw(target)
    async with db.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(raw).where(
            raw.c[target.name].is_not(None), ~raw.c[target.name].startswith(f"{PREFIX}:{current}:"))) or 0)


async def _reseal_batch(db: Database, target: SealedColumn, current: str, after: int, batch: int) -> tuple[int, int]:
    """Re-seal up to ``batch`` values past id ``after`` not sealed with ``current``: (re-sealed, last id seen)."""
    raw = _raw(target)
    value = raw.c[target.name]
    async with db.transaction() as session:
        rows = (await session.execute(select(raw.c.id, value).where(
            raw.c.id > after, value.is_not(None), ~value.startswith(f"{PREFIX}:{current}:"))
            .order_by(raw.c.id).limit(batch))).all()
        done = 0
        for row_id, stored in rows:
            fresh = db.keyring.seal(db.keyring.open(stored, target.purpose), target.purpose)
            # Compare-and-set: a value the platform changed meanwhile is left for the next pass, never overwritten.
            result = await session.execute(update(raw).where(and_(raw.c.id == row_id, value == stored))
                                           .values({target.name: fresh}))
            done += result.rowcount or 0  # type: ignore[attr-defined]
    return done, rows[-1][0] if rows else after


async def rotate(db: Database, *, batch: int, progress: Callable[[int, int], None],
                 settle_seconds: float = RELOAD_SECONDS + 1) -> Rotation:
    """A new current key in the key file (the old ones stay: backups need them), then every value sealed with an
    older key re-sealed with it, in transactions of ``batch`` rows. A running platform seals with the old key until
    it notices the new one (``RELOAD_SECONDS``): the last pass starts ``settle_seconds`` after the new key, so
    nothing is left behind."""
    if db.keyring.path is None:
        raise KeyringError("these keys live in memory only: there is no key file to rotate")
    write_key_file(db.keyring.path, db.keyring.keys.with_new_current())
    db.keyring.reload()
    current = db.keyring.current
    rotated_at = time.monotonic()
    log.info("keys.rotated", key_id=current)
    targets = schema_sealed_columns()
    total = sum([await _stale(db, target, current) for target in targets])
    done = 0
    progress(done, total)
    for passes in range(1, ROTATION_PASSES + 1):
        # Only a pass that starts once every process has the new key can prove none of the old is left.
        settled = time.monotonic() - rotated_at > settle_seconds
        found = 0
        for target in targets:
            after = 0
            for _ in range(10_000_000 // batch + 1):  # bounded: more rows than any city has
                resealed, last = await _reseal_batch(db, target, current, after, batch)
                if last == after:
                    break
                after, found, done = last, found + resealed, done + resealed
                progress(done, max(total, done))
        if found == 0 and settled:
            progress(done, done)
            return Rotation(current, done, passes)
        wait = settle_seconds - (time.monotonic() - rotated_at)
        if wait > 0:
            # Nothing announces another process's reload: wait out its longest interval once, then look again.
            await asyncio.sleep(wait)
    raise KeyringError(f"values sealed with older keys kept appearing after {ROTATION_PASSES} passes: is a process "
                       "running with a key file of its own? Run the rotation again")
