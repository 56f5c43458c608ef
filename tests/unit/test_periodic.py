"""The platform's timer: first round after the delay, then every interval; a failing round does not stop it."""

from __future__ import annotations

import asyncio

from callcenter.periodic import PeriodicJob


async def test_rounds_repeat_survive_failures_and_stop() -> None:
    rounds: list[int] = []
    went_on = asyncio.Event()

    async def round_() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise RuntimeError("a bad round")
        if len(rounds) == 4:
            went_on.set()

    job = PeriodicJob("test-job", round_, first_run_seconds=0.01, interval_seconds=0.01)
    await job.start()
    await asyncio.wait_for(went_on.wait(), timeout=5)
    await job.stop()
    done = len(rounds)
    await asyncio.sleep(0.05)
    assert done >= 4 and len(rounds) == done  # nothing runs after stop
    await job.stop()  # stopping twice is harmless
