"""A job the platform runs on a timer: once shortly after start, then every interval, until stopped.

A round that raises is logged and the next round tries again: one bad round never stops the timer. ``run_soon``
brings the next round forward (a round asked for while one runs follows it at once). Retention (daily), the
supervision-case scanner (every minute), the disk monitor, the recordings spool scan, the call-log journal's
replay and the chronic-disease plans' overdue-visit scan run on it.
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
        self._soon = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def run_soon(self) -> None:
        """Run the next round now rather than at its time (before start: as soon as the job starts)."""
        self._soon.set()

    async def _run(self) -> None:
        await self._wait(self._first)
        while True:
            self._soon.clear()
            try:
                await self._round()
            except Exception:
                log.exception("periodic.round_failed", job=self.name)
            await self._wait(self._interval)

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._soon.wait(), seconds)
