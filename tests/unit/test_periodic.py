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


async def test_run_soon_brings_the_next_round_forward_and_one_asked_for_during_a_round_follows_it() -> None:
    rounds: list[int] = []
    first_running, release_first = asyncio.Event(), asyncio.Event()

    async def round_() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            first_running.set()
            await release_first.wait()

    job = PeriodicJob("test-job", round_, first_run_seconds=3600, interval_seconds=3600)
    job.run_soon()  # asked for before the start: the first round does not wait its hour
    await job.start()
    try:
        await asyncio.wait_for(first_running.wait(), timeout=5)
        job.run_soon()  # while the first round runs
        release_first.set()
        async with asyncio.timeout(5):
            while len(rounds) < 2:  # noqa: ASYNC110 - the job runs in its own task
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert rounds == [0, 1]  # and then it waits its interval again
        job.run_soon()
        async with asyncio.timeout(5):
            while len(rounds) < 3:  # noqa: ASYNC110 - the job runs in its own task
                await asyncio.sleep(0.01)
    finally:
        await job.stop()
