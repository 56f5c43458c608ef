"""A read-only transaction on SQLite does not wait for the write lock; a normal one queues behind the writer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import text

from callcenter.db.session import Database


def test_a_read_only_transaction_reads_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    async def run() -> tuple[float, str | None, float]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'lock.sqlite3'}")
        try:
            async with db.transaction() as session:
                await session.execute(text("CREATE TABLE t (v TEXT)"))
                await session.execute(text("INSERT INTO t VALUES ('committed')"))
            holding, release = asyncio.Event(), asyncio.Event()

            async def writer() -> None:
                async with db.transaction() as session:
                    await session.execute(text("UPDATE t SET v = 'uncommitted'"))
                    holding.set()
                    await release.wait()

            async def timed(read_only: bool) -> tuple[float, str | None]:
                started = time.monotonic()
                async with db.transaction(read_only=read_only) as session:
                    value = await session.scalar(text("SELECT v FROM t"))
                return time.monotonic() - started, value

            task = asyncio.create_task(writer())
            await holding.wait()
            reader_seconds, seen = await timed(read_only=True)
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, release.set)
            queued_seconds, _ = await timed(read_only=False)
            await task
            return reader_seconds, seen, queued_seconds
        finally:
            await db.dispose()

    reader_seconds, seen, queued_seconds = asyncio.run(run())
    assert seen == "committed"  # the snapshot before the writer's uncommitted change
    assert reader_seconds < 0.2
    assert queued_seconds >= 0.25  # BEGIN IMMEDIATE waited for the writer to finish
