"""The audit log's hash chain: sealed in order, verified from the start, and the first tampered entry named —
on both backends, and through `callcenter audit verify` as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import delete, select, update

from callcenter.audit.chain import GENESIS, AuditSealer, link, seal_batch, verify
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor, record
from callcenter.db.session import Database
from tests import harness

ACTOR = Actor(None, "tester", "127.0.0.1")


async def _write(db: Database, count: int, action: str = "elder.read") -> list[int]:
    ids = []
    for index in range(count):
        async with db.transaction() as session:
            entry = record(session, ACTOR, action=action, target_type="elder", target_id=index,
                           details={"reason": "来电核实", "n": index})
            await session.flush()
            ids.append(entry.id)
    return ids


async def test_entries_are_sealed_in_order_and_an_intact_log_verifies(db: Database) -> None:
    ids = await _write(db, 7)
    verdict = await verify(db)
    assert verdict.intact and (verdict.sealed, verdict.unsealed) == (0, 7)
    first = await seal_batch(db, batch=3)
    second = await seal_batch(db, batch=10)
    assert (first.entries, second.entries, second.head_seq) == (3, 4, 7)
    assert (await seal_batch(db)).entries == 0
    async with db.transaction() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert [row.id for row in rows] == ids and [row.seq for row in rows] == list(range(1, 8))
    assert rows[0].entry_hash == link(GENESIS, rows[0]) and rows[1].entry_hash == link(rows[0].entry_hash, rows[1])
    verdict = await verify(db)
    assert verdict.intact and (verdict.sealed, verdict.unsealed) == (7, 0)
    assert "intact: 7 entries" in verdict.describe()


async def test_an_edited_entry_is_named(db: Database) -> None:
    ids = await _write(db, 5)
    await seal_batch(db)
    async with db.transaction() as session:  # someone with database access rewrites who read a file
        await session.execute(update(AuditEntry).where(AuditEntry.id == ids[2]).values(actor_label="somebody-else"))
    verdict = await verify(db)
    assert not verdict.intact and (verdict.broken_id, verdict.broken_seq, verdict.sealed) == (ids[2], 3, 2)
    assert f"id={ids[2]}" in verdict.describe() and "BROKEN" in verdict.describe()


async def test_a_rehashed_edit_breaks_the_next_entry_and_a_deleted_one_is_found(db: Database) -> None:
    ids = await _write(db, 6)
    await seal_batch(db)
    async with db.transaction() as session:
        entry = await session.get(AuditEntry, ids[1])
        previous = await session.scalar(select(AuditEntry.entry_hash).where(AuditEntry.id == ids[0]))
        entry.details = {"reason": "edited"}
        await session.flush()
        entry.entry_hash = link(previous, entry)  # the editor even recomputed this entry's hash
    verdict = await verify(db)
    assert (verdict.broken_id, verdict.broken_seq) == (ids[2], 3)  # the next one no longer links to it

    async with db.transaction() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids[1:3])))
    verdict = await verify(db)
    assert verdict.broken_id == ids[3] and "missing" in (verdict.reason or "")


async def test_the_sealer_job_seals_what_is_written_while_it_runs(db: Database) -> None:
    sealer = AuditSealer(db, interval_seconds=0.05)
    await sealer.start()
    try:
        await _write(db, 3)
        deadline = asyncio.get_running_loop().time() + 10
        while not await _all_sealed(db):
            assert asyncio.get_running_loop().time() < deadline, "the sealer did not seal the entries in 10 s"
            await asyncio.sleep(0.05)
    finally:
        await sealer.stop()
    assert (await verify(db)).sealed == 3


async def _all_sealed(db: Database) -> bool:
    async with db.transaction() as session:
        return (await session.scalar(select(AuditEntry.id).where(AuditEntry.seq.is_(None)).limit(1))) is None


def test_the_verify_command_exits_1_naming_the_broken_entry(migrated_db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "CC_DATA_DIR": str(tmp_path), "CC_DATABASE_URL": migrated_db_url}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "callcenter", "audit", "verify", "--seal"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    async def seed_and_tamper(tamper: bool) -> None:
        db = Database(migrated_db_url)
        try:
            if not tamper:
                await _write(db, 4)
            else:
                async with db.transaction() as session:
                    first = await session.scalar(select(AuditEntry.id).order_by(AuditEntry.id).limit(1))
                    await session.execute(update(AuditEntry).where(AuditEntry.id == first)
                                          .values(details={"reason": "rewritten"}))
        finally:
            await db.dispose()

    harness.run_async(seed_and_tamper(False))
    result = run()
    assert result.returncode == 0 and "intact: 4 entries" in result.stdout, result.stderr
    harness.run_async(seed_and_tamper(True))
    result = run()
    assert result.returncode == 1 and "BROKEN at entry id=" in result.stdout and "position 1" in result.stdout
