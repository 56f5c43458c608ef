"""SQLite writers of one process take turns in arrival order, without sleeping in SQLite's busy handler; a
transaction nested in the task's own write transaction does not wait for itself; a turn that never comes fails."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from callcenter.db import session as db_session
from callcenter.db.session import Database, DatabaseBusy


@contextlib.asynccontextmanager
async def turn_held(db: Database) -> AsyncIterator[asyncio.Task[None]]:
    """A writer holding the write turn until the block ends; yields its task."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with db.transaction():
            holding.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await holding.wait()
    try:
        yield task
    finally:
        release.set()


async def test_writers_take_turns_in_order_and_a_nested_transaction_does_not_deadlock(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.sqlite3'}")
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
        order: list[int] = []

        async def writer(n: int) -> None:
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                order.append(n)
                await asyncio.sleep(0.01)  # holds its turn across an await, as real handlers do

        await asyncio.gather(*(writer(n) for n in range(20)))
        assert order == list(range(20))
        async with db.transaction() as session:
            assert await session.scalar(text("SELECT count(*) FROM t")) == 20

        async with db.transaction() as outer:
            await outer.execute(text("INSERT INTO t VALUES (100)"))
            async with db.transaction(read_only=True) as reader:  # a read inside a write: never queued
                assert await reader.scalar(text("SELECT count(*) FROM t")) == 20
    finally:
        await db.dispose()


async def test_a_turn_that_never_comes_is_an_error_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_session, "WRITE_TURN_SECONDS", 0.2)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'busy.sqlite3'}")
    try:
        holding, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with db.transaction():
                holding.set()
                await release.wait()

        task = asyncio.create_task(holder())
        await holding.wait()
        with pytest.raises(DatabaseBusy):
            async with db.transaction():
                pass
        release.set()
        await task
        async with db.transaction():  # the turn is free again
            pass
    finally:
        await db.dispose()


async def test_an_urgent_writer_goes_before_every_ordinary_one_waiting(tmp_path: Path) -> None:
    """SOS intake's write (urgent) is not queued behind a burst of call events and audit entries."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'urgent.sqlite3'}")
    try:
        order: list[str] = []

        async def writer(name: str, *, urgent: bool = False) -> None:
            async with db.transaction(urgent=urgent):
                order.append(name)

        async with turn_held(db) as holder:
            waiting = [asyncio.create_task(writer(f"event{n}")) for n in range(5)]
            waiting.append(asyncio.create_task(writer("sos", urgent=True)))
            waiting.append(asyncio.create_task(writer("event5")))
            await asyncio.sleep(0)  # every writer is in line
        await asyncio.wait_for(asyncio.gather(holder, *waiting), 10)
        assert order == ["sos", "event0", "event1", "event2", "event3", "event4", "event5"]
    finally:
        await db.dispose()


async def test_a_background_writer_goes_after_every_other_one_waiting(tmp_path: Path) -> None:
    """A batch of readings (background) waits for the calls' and alarms' writers queued before and after it: the
    telemetry flood does not delay them by more than the batch already writing."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'background.sqlite3'}")
    try:
        order: list[str] = []

        async def writer(name: str, *, urgent: bool = False, background: bool = False) -> None:
            async with db.transaction(urgent=urgent, background=background):
                order.append(name)

        async with turn_held(db) as holder:
            waiting = [asyncio.create_task(writer("readings0", background=True)),
                       asyncio.create_task(writer("alarm")),
                       asyncio.create_task(writer("readings1", background=True)),
                       asyncio.create_task(writer("sos", urgent=True)),
                       asyncio.create_task(writer("event"))]
            await asyncio.sleep(0)  # every writer is in line
        await asyncio.wait_for(asyncio.gather(holder, *waiting), 10)
        assert order == ["sos", "alarm", "event", "readings0", "readings1"]
        async with db.transaction(background=True):  # alone, it writes at once
            pass
    finally:
        await db.dispose()


async def test_a_writer_that_gives_up_leaves_the_line_and_the_turn_passes_on(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'cancel.sqlite3'}")
    try:
        async def writer() -> str:
            async with db.transaction():
                return "wrote"

        async with turn_held(db) as holder:
            impatient = asyncio.create_task(writer())
            patient = asyncio.create_task(writer())
            await asyncio.sleep(0)
            impatient.cancel()
        assert await asyncio.wait_for(patient, 10) == "wrote"
        await holder
        with pytest.raises(asyncio.CancelledError):
            await impatient
        assert await asyncio.wait_for(writer(), 10) == "wrote"  # nothing left holding the turn
    finally:
        await db.dispose()
