"""Roster imports started over the API run in the background: the request answers 202 with the import's id at
once and the panel polls ``GET /api/v1/elders/imports/{id}``.

Every running import's task is held here until it ends (a bare ``create_task`` may be collected mid-run), and the
platform's shutdown cancels and awaits them: the import's transaction rolls back, so nothing of its file is
committed, and its row is marked failed before the database closes.
"""

from __future__ import annotations

import asyncio

from callcenter.audit.services import Actor
from callcenter.db.session import Database
from callcenter.elders.roster import begin_import, run_import
from callcenter.logs import get_logger

log = get_logger(__name__)


class RosterImportTasks:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._tasks: dict[int, asyncio.Task[object]] = {}
        self._stopping = False

    @property
    def running(self) -> list[int]:
        return sorted(self._tasks)

    async def start(self, filename: str, data: bytes, *, dry_run: bool, actor: Actor) -> int:
        """Record the import (status running) and start it; returns its id."""
        if self._stopping:
            raise RuntimeError("the server is stopping")
        import_id = await begin_import(self._db, filename, data, dry_run=dry_run, actor=actor)
        task = asyncio.create_task(
            run_import(self._db, import_id, filename, data, dry_run=dry_run, actor=actor),
            name=f"roster-import-{import_id}")
        self._tasks[import_id] = task
        task.add_done_callback(lambda done: self._ended(import_id, done))
        return import_id

    def _ended(self, import_id: int, task: asyncio.Task[object]) -> None:
        self._tasks.pop(import_id, None)
        if not task.cancelled() and task.exception() is not None:
            # run_import records every expected failure itself; this is a bug, and the row may still say running.
            log.error("roster.import_crashed", import_id=import_id, exc_info=task.exception())

    async def wait(self, import_id: int) -> None:
        """Until import ``import_id`` has ended (tests; a no-op when it is not running here)."""
        task = self._tasks.get(import_id)
        if task is not None:
            await asyncio.wait({task})

    async def stop(self) -> None:
        """Cancel the running imports and wait until each has rolled back and recorded its failure."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            log.warning("roster.imports_interrupted", imports=sorted(self._tasks))
            await asyncio.wait(tasks)
