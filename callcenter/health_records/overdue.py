"""The overdue-visit scan: every ``CC_HEALTH_VISIT_SCAN_SECONDS`` (15 min), each active chronic-disease plan whose
next follow-up visit was due before today (the centre's calendar) gets one work order for the community doctor
(``services.raise_overdue``); the plan and due date are remembered with the order, so a later round raises no
second one. A round first looks in a read-only transaction and writes only when there is something to raise. A
failed round is logged and the next one tries again (``periodic.PeriodicJob``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.health_records.services import find_overdue, raise_overdue
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder
from callcenter.periodic import PeriodicJob

log = get_logger(__name__)

FIRST_RUN_SECONDS = 30.0  # soon after start: visits that fell due while the platform was down


class OverdueVisitScanner:
    def __init__(self, db: Database, *, tz: ZoneInfo, interval_seconds: float,
                 first_run_seconds: float = FIRST_RUN_SECONDS, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self._tz = tz
        self._clock = clock  # injectable: tests move time instead of waiting for it
        self._job = PeriodicJob("overdue-visit-scanner", self._round, first_run_seconds=first_run_seconds,
                                interval_seconds=interval_seconds)
        self.interval_seconds = interval_seconds
        self.rounds = 0

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def run_once(self) -> list[WorkOrder]:
        """One round at the clock's time: the orders it raised."""
        now = self._clock()
        today = now.astimezone(self._tz).date()
        async with self.db.transaction(read_only=True) as session:
            pending = await find_overdue(session, today)
        raised: list[WorkOrder] = []
        if pending:
            async with self.db.transaction() as session:
                raised = await raise_overdue(session, today, now=now, tz=self._tz)
            for order in raised:
                log.info("health.visit_overdue", work_order=order.number, elder_id=order.elder_id)
        self.rounds += 1
        return raised

    async def _round(self) -> None:
        await self.run_once()
