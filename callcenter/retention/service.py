"""The platform's daily retention run: once shortly after start, then every day."""

from __future__ import annotations

import asyncio
import contextlib

from callcenter.logs import get_logger
from callcenter.retention.engine import RetentionBusy, RetentionEngine, RetentionReport

log = get_logger(__name__)

FIRST_RUN_SECONDS = 300.0  # after start: the platform is up and answering calls first
INTERVAL_SECONDS = 24 * 3600.0


class RetentionService:
    def __init__(self, engine: RetentionEngine, *, first_run_seconds: float = FIRST_RUN_SECONDS,
                 interval_seconds: float = INTERVAL_SECONDS) -> None:
        self.engine = engine
        self._first = first_run_seconds
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self.last: RetentionReport | None = None
        self.ran = asyncio.Event()  # set after each run that finished

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run_daily(), name="retention-daily")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run_daily(self) -> None:
        await asyncio.sleep(self._first)
        while True:
            try:
                self.last = await self.engine.run()
                self.ran.set()
            except RetentionBusy as busy:  # `callcenter retention run` is at it: tomorrow, then
                log.info("retention.skipped", reason=str(busy))
            except Exception:
                log.exception("retention.run_failed")
            await asyncio.sleep(self._interval)
