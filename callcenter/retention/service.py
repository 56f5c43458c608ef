"""The platform's daily retention run: once shortly after start, then every day."""

from __future__ import annotations

import asyncio

from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob
from callcenter.retention.engine import RetentionBusy, RetentionEngine, RetentionReport

log = get_logger(__name__)

FIRST_RUN_SECONDS = 300.0  # after start: the platform is up and answering calls first
INTERVAL_SECONDS = 24 * 3600.0


class RetentionService:
    def __init__(self, engine: RetentionEngine, *, first_run_seconds: float = FIRST_RUN_SECONDS,
                 interval_seconds: float = INTERVAL_SECONDS) -> None:
        self.engine = engine
        self._job = PeriodicJob("retention-daily", self._round, first_run_seconds=first_run_seconds,
                                interval_seconds=interval_seconds)
        self.last: RetentionReport | None = None
        self.ran = asyncio.Event()  # set after each run that finished

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _round(self) -> None:
        try:
            self.last = await self.engine.run()
            self.ran.set()
        except RetentionBusy as busy:  # `callcenter retention run` is at it: tomorrow, then
            log.info("retention.skipped", reason=str(busy))
        except Exception:
            log.exception("retention.run_failed")
