"""The platform's supervision-case scanner: ``services.scan`` every ``CC_ESCALATION_SCAN_SECONDS`` (60 s).

Each round first looks without writing (a read-only transaction never waits for SQLite's writers), and takes a
write transaction only when there is something to escalate; ``scan`` looks again inside it, so a case is never
opened twice. A failed round is logged and the next one tries again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob
from callcenter.supervision_cases.models import SupervisionCase
from callcenter.supervision_cases.services import find, scan

log = get_logger(__name__)

# The first round soon after start (cases due while the platform was down), once the platform is answering calls.
FIRST_RUN_SECONDS = 5.0


class EscalationScanner:
    def __init__(self, db: Database, *, interval_seconds: float, first_run_seconds: float = FIRST_RUN_SECONDS,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock  # injectable: tests move time instead of waiting for it
        self._job = PeriodicJob("escalation-scanner", self._round, first_run_seconds=first_run_seconds,
                                interval_seconds=interval_seconds)
        self.rounds = 0  # rounds finished (with or without cases)

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def run_once(self) -> list[SupervisionCase]:
        """One round at the clock's time: the cases it opened."""
        now = self._clock()
        async with self.db.transaction(read_only=True) as session:
            pending = await find(session, now)
        opened: list[SupervisionCase] = []
        if pending:
            async with self.db.transaction() as session:
                opened = await scan(session, now)
            for case in opened:
                log.info("escalation.case_opened", case=case.number, reason=case.reason.value,
                         trigger=case.trigger_key, work_order_id=case.work_order_id, provider_id=case.provider_id,
                         elder_id=case.elder_id)
        self.rounds += 1
        return opened

    async def _round(self) -> None:
        opened = await self.run_once()
        if opened:
            log.info("escalation.scanned", opened=len(opened))
