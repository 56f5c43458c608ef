"""The platform's daily retention task: its first run comes shortly after start, on the real clock."""

from __future__ import annotations

import asyncio
import datetime as dt

from callcenter.db.base import utcnow
from callcenter.retention.models import RetentionRule
from callcenter.retention.service import FIRST_RUN_SECONDS, INTERVAL_SECONDS, RetentionService
from tests.unit.retention.conftest import LOCAL_ONLY
from tests.unit.retention.rig import Rig


@LOCAL_ONLY
async def test_the_service_runs_after_its_first_delay_and_stops_cleanly(rig: Rig) -> None:
    assert (FIRST_RUN_SECONDS, INTERVAL_SECONDS) == (300, 86400)
    recording = await rig.recording(created=utcnow() - dt.timedelta(days=93))
    service = RetentionService(rig.engine(), first_run_seconds=0, interval_seconds=INTERVAL_SECONDS)
    await service.start()
    try:
        await asyncio.wait_for(service.ran.wait(), 30)
    finally:
        await service.stop()
    assert service.last is not None and service.last.rules[RetentionRule.RECORDING_EXPIRED].deleted == 1
    assert not await rig.stored(recording)
