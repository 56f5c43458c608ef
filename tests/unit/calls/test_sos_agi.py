"""The ``sos`` FastAGI handler over real TCP (the fake Asterisk of the FastAGI tests) against a SQLite database
that another process holds locked: intake waits out a short lock, and gives up at its deadline on a long one,
so the dialplan queues the elder instead of leaving them in silence."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.calls import agi as calls_agi
from callcenter.calls.models import Call, CallKind
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.telephony.fastagi import FastAgiServer
from tests import harness
from tests.unit.telephony.test_fastagi import OK_RESULT, FakeAsterisk

pytestmark = pytest.mark.timeout(30)
DEADLINE = 1.5


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with harness.database_url("sqlite", tmp_path) as url:
        harness.migrated_database(url)
        yield url


@pytest.fixture
async def agi(sqlite_url: str) -> AsyncIterator[tuple[FastAgiServer, Database]]:
    db = Database(sqlite_url)
    server = FastAgiServer("127.0.0.1", 0, {"sos": functools.partial(calls_agi.sos_intake, db, DEADLINE, None)})
    await server.start()
    try:
        yield server, db
    finally:
        await server.stop()
        await db.dispose()


async def _press_sos(port: int, linkedid: str) -> list[str]:
    side = await FakeAsterisk.request(port, "sos", "elder-0099", linkedid, f"SOS-{linkedid}", uniqueid=linkedid,
                                      channel="PJSIP/elder-0099-00000001")
    try:
        return await side.converse()
    finally:
        await side.close()


async def _sos_orders(db: Database, linkedid: str) -> list[WorkOrder]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(
            select(WorkOrder).join(Call, WorkOrder.call_id == Call.id)
            .where(Call.linkedid == linkedid, Call.kind == CallKind.SOS,
                   WorkOrder.kind == WorkOrderKind.EMERGENCY))).all())


async def test_intake_waits_out_a_short_lock_and_raises_exactly_one_order(
        agi: tuple[FastAgiServer, Database], sqlite_url: str) -> None:
    server, db = agi
    with harness.sqlite_locked_by_another_process(sqlite_url):
        press = asyncio.create_task(_press_sos(server.port, "1765000000.11"))
        await asyncio.sleep(0.5)  # the lock is held while the SOS comes in
    commands = await asyncio.wait_for(press, 10)
    assert OK_RESULT in commands
    assert any(c.startswith("SET VARIABLE CC_ORDER_ID") for c in commands)
    assert len(await _sos_orders(db, "1765000000.11")) == 1


async def test_intake_gives_up_at_its_deadline_so_the_dialplan_queues_the_call(
        agi: tuple[FastAgiServer, Database], sqlite_url: str) -> None:
    server, db = agi
    with harness.sqlite_locked_by_another_process(sqlite_url):
        started = time.monotonic()
        commands = await asyncio.wait_for(_press_sos(server.port, "1765000000.12"), 15)
        elapsed = time.monotonic() - started
    # The handler failed (no CC_AGI_RESULT=ok), so the dialplan's agi-failed branch queues the SOS at once.
    assert OK_RESULT not in commands
    assert DEADLINE - 0.2 < elapsed < DEADLINE + 2.5, elapsed
    # The attempt in flight was left to finish: once the lock goes, it writes the order, once.
    for _ in range(100):  # bounded: SQLite's busy wait ends within its 5 s
        if orders := await _sos_orders(db, "1765000000.12"):
            break
        await asyncio.sleep(0.1)
    assert len(orders) == 1
