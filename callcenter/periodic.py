"""A job the platform runs on a timer: once shortly after start, then every interval, until stopped.

A round that raises is logged and the next round tries again: one bad round never stops the timer. Retention
(daily) and the supervision-case scanner (every minute) run on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from callcenter.logs import get_logger

log = get_logger(__name__)


class PeriodicJob:
    def __init__(self, name: str, round_: Callable[[], Awaitable[object]], *, first_run_seconds: float,
                 interval_seconds: float) -> None:
        self.name = name
        self._round = round_
        self._first = first_run_seconds
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self._first)
        while True:
            try:
                await self._round()
            except Exception:
                log.exception("periodic.round_failed", job=self.name)
            await asyncio.sleep(self._interval)
