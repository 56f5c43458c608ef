"""The red button under injected faults (docs/reliability.md): each test breaks one part for real while a SIPp
device presses SOS, and checks that the elder reaches an agent with exactly one emergency order."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder
from tests import harness
from tests.integration.test_sos import _last_sos_id, _sos_after

pytestmark = pytest.mark.integration

FLOOD_ADDRESS = "127.0.0.2"
FLOOD_CONNECTIONS = 60
FLOOD_MAX_REQUESTS = 100_000
FLOOD_MAX_SECONDS = 60.0


class LoginFlood:
    """``FLOOD_CONNECTIONS`` concurrent wrong-password log-ins from ``FLOOD_ADDRESS``, each with a name of its own
    (so no lock-out ends it early), until stopped; bounded in count and time."""

    def __init__(self, base: str) -> None:
        self._base = base
        self._stop = threading.Event()
        self.statuses: collections.Counter[int | str] = collections.Counter()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        sent = 0
        deadline = time.monotonic() + FLOOD_MAX_SECONDS
        connector = aiohttp.TCPConnector(local_addr=(FLOOD_ADDRESS, 0), limit=FLOOD_CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def one_connection(index: int) -> None:
                nonlocal sent
                while not self._stop.is_set() and sent < FLOOD_MAX_REQUESTS and time.monotonic() < deadline:
                    sent += 1
                    body = {"username": f"guess-{index}-{sent}", "password": "not-the-password"}
                    try:
                        async with session.post(f"{self._base}/api/v1/auth/login", json=body) as answer:
                            await answer.read()
                            self.statuses[answer.status] += 1
                    except (aiohttp.ClientError, TimeoutError) as error:
                        self.statuses[type(error).__name__] += 1

            await asyncio.gather(*(one_connection(i) for i in range(FLOOD_CONNECTIONS)))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> LoginFlood:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(FLOOD_MAX_SECONDS + 35)


@contextmanager
def login_flood(stack: harness.Stack) -> Iterator[LoginFlood]:
    with LoginFlood(stack.http_base) as flood:
        harness.eventually(lambda: sum(flood.statuses.values()) >= FLOOD_CONNECTIONS or None,
                           what="the flood under way")
        yield flood


def _orders_of_call(stack: harness.Stack, call_id: int) -> int:
    async def count(db: Database) -> int:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(func.count()).select_from(WorkOrder)
                                        .where(WorkOrder.call_id == call_id)) or 0

    return stack.query(count)  # type: ignore[no-any-return]


@pytest.mark.every_database
def test_a_log_in_flood_neither_stops_an_sos_nor_locks_out_the_real_admin(stack: harness.Stack,
                                                                          sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    with login_flood(stack) as flood:
        # The agent's phone rings and answers (asserted inside), while the flood goes on.
        harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=2000)
        call, order = harness.eventually(lambda: _sos_after(stack, before), what="the SOS call and its order")
        # The real administrator, from another address, logs in during the flood.
        status, body = stack.api("POST", "/api/v1/auth/login",
                                 {"username": "admin", "password": harness.ADMIN_PASSWORD})
        assert status == 200, body
        assert flood.running, "the flood ended before the SOS did: it proved nothing"
    assert (order.elder_id, order.device_id) == (seeded.elder_id, seeded.device_id)  # the elder is identified
    assert _orders_of_call(stack, call.id) == 1
    # The flood was real and was turned away without errors: wrong passwords, then throttling.
    assert flood.statuses[401] > 0 and flood.statuses[429] > 0, flood.statuses
    assert set(flood.statuses) <= {401, 429}, flood.statuses
