"""Async engine and transactions."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from callcenter.db.keyring import Keyring
from callcenter.db.sealed import attach_keyring


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver (its implicit BEGIN breaks SAVEPOINTs); see _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets the web panel read while a call is being logged.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# Execution option of a transaction that only reads (Database.transaction(read_only=True)).
READ_ONLY = "callcenter_read_only"


def _sqlite_begin(connection: Any) -> None:
    """BEGIN IMMEDIATE: a transaction takes SQLite's write lock when it starts, so two writers queue (busy_timeout)
    instead of one failing later with a stale snapshot when it tries to write what it read.

    A transaction that only reads starts with a plain (deferred) BEGIN: in WAL mode it reads a snapshot and never
    waits for the write lock, so a screen-pop is not queued behind every AMI event being logged."""
    connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def create_engine(url: str, *, keyring: Keyring | None = None) -> AsyncEngine:
    """``keyring``: the data keys sealed columns use (callcenter.db.sealed); without it they cannot be read or
    written through this engine (schema work, migrations that do not touch them)."""
    engine = _create_engine(url)
    if keyring is not None:
        attach_keyring(engine.sync_engine.dialect, keyring)
    return engine


def _create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, hide_parameters=True)  # errors never carry the values (callcenter.logs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # A stopped or stalled server must fail a call's write within seconds, not hang it: the SOS path has its own
    # deadline, and everything else retries or reports. Reports and retention run longer statements than any
    # call handler, hence the statement limit well above the connect and pool limits.
    return create_async_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=10,
                               pool_timeout=POOL_SECONDS,
                               connect_args={"timeout": CONNECT_SECONDS, "command_timeout": STATEMENT_SECONDS})


# PostgreSQL: waiting for a pooled connection, opening one, and one statement.
POOL_SECONDS = 5.0
CONNECT_SECONDS = 3.0
STATEMENT_SECONDS = 30.0


# How long a writer waits for its turn before giving up, as SQLite's busy_timeout would.
WRITE_TURN_SECONDS = 5.0


class DatabaseBusy(RuntimeError):
    pass


class _WriteTurns:
    """SQLite's writers of this process, one at a time: first come, first served, except that an urgent writer
    (an SOS being taken in) goes before every ordinary one still waiting, and a background writer (a batch of
    telemetry) after them all."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ordinary: collections.deque[asyncio.Future[None]] = collections.deque()
        self._background: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, *, urgent: bool, timeout: float, background: bool = False) -> None:
        if not self._held and not self._urgent and not self._ordinary and not self._background:
            self._held = True
            return
        line = self._urgent if urgent else self._background if background else self._ordinary
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append(turn)
        try:
            async with asyncio.timeout(timeout):
                await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the turn just as it gave up: pass it on
            else:
                turn.cancel()
                with contextlib.suppress(ValueError):
                    line.remove(turn)
            raise

    def release(self) -> None:
        for line in (self._urgent, self._ordinary, self._background):
            while line:
                turn = line.popleft()
                if not turn.done():
                    turn.set_result(None)  # held from here by the waiter
                    return
        self._held = False


class Database:
    """The one engine of a running platform, and the unit of work (``transaction()``) every service uses.

    On SQLite the process's writers take turns (FIFO, urgent ones first) before ``BEGIN IMMEDIATE``. Without
    it a writer that finds the database locked sleeps in SQLite's busy handler (1, 2, 5, 10, 15, 20… ms) and only
    retries when it wakes: under a burst of call events an SOS intake waited tens of milliseconds for a lock that
    had long been free. Other processes (the CLI) still meet SQLite's own lock and busy_timeout.
    """

    def __init__(self, url: str, keyring: Keyring | None = None) -> None:
        """``keyring``: the platform's data keys (CC_DATA_KEY_FILE). None is keys of this process's memory only,
        for tests and throwaway databases: what they seal cannot be read by any other process."""
        self.url = url
        self.keyring = keyring if keyring is not None else Keyring.ephemeral()
        self.engine = create_engine(url, keyring=self.keyring)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_turns = _WriteTurns() if self.engine.dialect.name == "sqlite" else None
        self._writer: asyncio.Task[object] | None = None

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False, urgent: bool = False,
                          background: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose work commits together, or not at all.

        ``read_only``: the work only reads. On SQLite it then never waits for a writer (and must not write: a write
        there can fail with "database is locked" instead of queueing). ``urgent``: on SQLite, the turn to write
        comes before every ordinary writer's still waiting (SOS intake). ``background``: after every other writer
        waiting (a batch of readings: calls and alarms go first)."""
        if read_only or self._write_turns is None or self._writer is asyncio.current_task():
            # Readers never queue; PostgreSQL has row locks; a transaction nested in this task's own write
            # transaction must not wait for itself.
            async with self._session(read_only=read_only) as session:
                yield session
            return
        try:
            await self._write_turns.acquire(urgent=urgent, background=background, timeout=WRITE_TURN_SECONDS)
        except TimeoutError:
            raise DatabaseBusy(f"no turn to write within {WRITE_TURN_SECONDS:.0f} s: the database is busy") from None
        self._writer = asyncio.current_task()
        try:
            async with self._session(read_only=False) as session:
                yield session
        finally:
            self._writer = None
            self._write_turns.release()

    @asynccontextmanager
    async def _session(self, *, read_only: bool) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            if read_only:
                # Takes the connection now, carrying the option _sqlite_begin reads before it sends BEGIN.
                await session.connection(execution_options={READ_ONLY: True})
            yield session

    async def ping(self, timeout: float = 3.0) -> None:
        async def _probe() -> None:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        await asyncio.wait_for(_probe(), timeout)

    async def dispose(self) -> None:
        await self.engine.dispose()
