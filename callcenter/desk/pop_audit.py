"""The audit of screen-pops: a pop that shows an elder's file on an agent's panel is a read of that file, audited as
``elder.screen_pop`` (callcenter.elders.access): the agent, when the panel had it, the panel's address, the elder,
and the call that justified it. Field names only, never values.

Written *after* the pop is sent, never before it: the pop must reach the agent within 50 ms p99
(benchmarks/desk_load.py), and a write would wait for its turn behind every other writer (SQLite has one). The pop's
own transaction is read-only for the same reason. So ``ScreenPops`` hands each read to ``note``, which never waits,
and one task writes what has gathered in one short transaction (the entries keep the time of the pop), retrying
while the database is away. Bounded: at most ``MAX_WAITING`` reads wait; past that (the database away for long under
load) further ones are counted and logged as lost, never held without limit. At shutdown what waits is written
within ``STOP_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt

from sqlalchemy import select

from callcenter.audit.services import Actor
from callcenter.db.retry import is_transient, with_retry
from callcenter.db.session import Database
from callcenter.elders.access import SCREEN_POP, ReadGrounds, record_read
from callcenter.logs import get_logger
from callcenter.users.models import User

log = get_logger(__name__)

MAX_WAITING = 10_000
BATCH = 200  # entries a transaction
WRITE_SECONDS = 10.0  # one round of retries of a batch; the batch is kept and tried again after it
STOP_SECONDS = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class PopRead:
    """One pop of an elder's file that reached an agent's panel(s)."""

    username: str
    elder_id: int
    call_id: int
    at: dt.datetime
    panel_addresses: tuple[str, ...]  # where the panels that had it are (the first is the entry's source)
    fields: tuple[str, ...]  # the file's fields the pop carried: names, never values
    replay: bool = False  # a panel that connected mid-call got the pop it had missed


class ScreenPopAudit:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: asyncio.Queue[PopRead] = asyncio.Queue(MAX_WAITING)
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None  # the batch being written (shielded from the stop)
        self.lost = 0  # reads that found the queue full: logged, never written

    def note(self, read: PopRead) -> None:
        """Queue ``read`` for the audit log; returns at once."""
        try:
            self._waiting.put_nowait(read)
        except asyncio.QueueFull:
            self.lost += 1
            log.error("desk.screen_pop_audit_lost", call_id=read.call_id, elder_id=read.elder_id,
                      agent=read.username, lost=self.lost, waiting=MAX_WAITING)

    @property
    def waiting(self) -> int:
        return self._waiting.qsize()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="screen-pop-audit")

    async def stop(self) -> None:
        """Stop taking batches, let the one being written finish, and write what still waits — each within
        ``STOP_SECONDS``: a shutdown must not hang on a database that is away. What is left is logged."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._writing is not None and not (await asyncio.wait({self._writing}, timeout=STOP_SECONDS))[0]:
            self._writing.cancel()
            log.error("desk.screen_pop_audit_unwritten", batch_in_flight=True, waiting=self.waiting)
        try:
            await asyncio.wait_for(self.flush(), STOP_SECONDS)
        except Exception as error:  # the database is away or slow: say what is lost
            log.error("desk.screen_pop_audit_unwritten", waiting=self.waiting, error=type(error).__name__)

    async def flush(self) -> None:
        """Write everything waiting now, once (shutdown; tests)."""
        while not self._waiting.empty():
            await self._write(self._take(None))

    def _take(self, first: PopRead | None) -> list[PopRead]:
        batch = [first] if first is not None else []
        while len(batch) < BATCH and not self._waiting.empty():
            batch.append(self._waiting.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            batch = self._take(await self._waiting.get())
            self._writing = asyncio.create_task(self._write_until_done(batch), name="screen-pop-audit-batch")
            await asyncio.shield(self._writing)

    async def _write_until_done(self, batch: list[PopRead]) -> None:
        """The batch until it is written or fails for good (a bug: logged); each round of retries is bounded."""
        while True:
            try:
                # in_order: an attempt still running at the deadline is waited for, so a batch is never written twice
                await with_retry(lambda: self._write(batch), deadline=WRITE_SECONDS, in_order=True)
                return
            except Exception as error:
                if not is_transient(error) and not isinstance(error, TimeoutError):
                    log.error("desk.screen_pop_audit_failed", entries=len(batch), exc_info=error)
                    return
                log.warning("desk.screen_pop_audit_waiting", entries=len(batch), waiting=self.waiting,
                            error=type(error).__name__)

    async def _write(self, batch: list[PopRead]) -> None:
        if not batch:
            return
        async with self._db.transaction() as session:
            rows = await session.execute(select(User.username, User.id).where(
                User.username.in_({read.username for read in batch})))
            ids = {username: user_id for username, user_id in rows}
            for read in batch:
                actor = Actor(ids.get(read.username), read.username,
                              read.panel_addresses[0] if read.panel_addresses else None)
                details: dict[str, object] = {"fields": list(read.fields)}
                if len(read.panel_addresses) > 1:
                    details["other_panel_addresses"] = list(read.panel_addresses[1:])
                if read.replay:
                    details["replay"] = True
                entry = record_read(session, actor, SCREEN_POP, read.elder_id, ReadGrounds(call_id=read.call_id),
                                    **details)
                entry.at = read.at
