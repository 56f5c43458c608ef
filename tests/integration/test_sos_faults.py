"""The red button under injected faults (docs/reliability.md): each test breaks one part for real while a SIPp
device presses SOS, and checks that the elder reaches an agent with exactly one emergency order."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from tests import harness
from tests.integration.test_database_faults import _last_call_id, _stored_sos
from tests.integration.test_sos import _last_sos_id, _order_actions, _sos_after, called_back_once

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
    harness.record_reliability("login flood", harness.sos_answer_to_queue_seconds(stack, seeded.device_user))
    # The flood was real and was turned away without errors: wrong passwords, then throttling.
    assert flood.statuses[401] > 0 and flood.statuses[429] > 0, flood.statuses
    assert set(flood.statuses) <= {401, 429}, flood.statuses


# -- the platform killed (SIGKILL) at points of an SOS ------------------------------------------------------------

def _sos_since(stack: harness.Stack, before: int, check: Callable[[Call], bool]) -> Call | None:
    """The newest SOS call after call id ``before``, ended or not, if it passes ``check``."""
    async def fetch(db: Database) -> Call | None:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(Call).where(Call.kind == CallKind.SOS, Call.id > before)
                                        .order_by(Call.id.desc()).limit(1))

    call = stack.query(fetch)
    return call if call is not None and check(call) else None


def _press_sos(stack: harness.Stack, pool: ThreadPoolExecutor, sipp_dir: Path, hold_ms: int) -> Future:
    """The seeded device presses the red button and hangs up after ``hold_ms`` of waiting, in the background."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    return pool.submit(harness.sipp, stack, "call", service="sos", auth_user=seeded.device_user,
                       password=seeded.device_password, variables={"user": seeded.device_user,
                                                                  "hold_ms": str(hold_ms)},
                       workdir=sipp_dir, timeout=hold_ms / 1000 + 20)


def _record(stack: harness.Stack, fault: str) -> None:
    harness.record_reliability(fault, harness.sos_answer_to_queue_seconds(stack, stack.seeded.device_user))  # type: ignore[attr-defined]


def _restart(stack: harness.Stack) -> None:
    stack.start_platform()
    stack.wait_healthy()


def _abandoned_with_one_order(stack: harness.Stack, before: int) -> int:
    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the abandoned SOS and its order")
    assert call.disposition is Disposition.ABANDONED
    assert _orders_of_call(stack, call.id) == 1
    return order.id


def test_killed_while_the_sos_rings_the_elder_who_hung_up_meanwhile_iscalled_back_once(
        stack: harness.Stack, sipp_dir: Path) -> None:
    before = _last_sos_id(stack)
    with ThreadPoolExecutor(1) as pool:
        press = _press_sos(stack, pool, sipp_dir, hold_ms=5000)
        harness.eventually(lambda: _sos_since(stack, before, lambda c: c.queue == "emergency"),
                           what="the SOS waiting in the emergency queue")
        stack.kill_platform()
        assert press.result(40).ok  # the elder gave up while the platform was dead
    _record(stack, "platform killed while the SOS rings")
    _restart(stack)
    called_back_once(stack, sipp_dir, _abandoned_with_one_order(stack, before))


def test_killed_in_the_sos_intake_the_call_is_learnt_live_on_return_andcalled_back_once(
        stack: harness.Stack, sipp_dir: Path) -> None:
    """The AGI waits for a database another process holds, and the platform dies right then: the dialplan queues
    the elder anyway; back up while the elder still waits, the platform learns the call from Asterisk."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    with ThreadPoolExecutor(1) as pool:
        with harness.sqlite_locked_by_another_process(stack.settings.database_url):
            # The elder stays on the line long enough for a restart on a busy machine (a loaded runner takes 10 s and
            # more to start the platform), within CC_DEVICE_RTP_TIMEOUT (30 s in the tests): the point is that the
            # call is learnt while it is live.
            press = _press_sos(stack, pool, sipp_dir, hold_ms=24000)
            harness.eventually(lambda: any(
                m.get("Application") == "AGI" and seeded.device_user in m.get("Channel", "")
                for m in harness.ami_action(stack, {"Action": "CoreShowChannels"})), what="the SOS in its AGI")
            stack.kill_platform()
        _restart(stack)
        # Learnt while the elder is still on the line: identified, with its order, in the emergency queue.
        call = harness.eventually(lambda: _sos_since(stack, before, lambda c: c.ended_at is None
                                                     and c.queue == "emergency"), timeout=20,
                                  what="the live SOS learnt")
        assert (call.elder_id, call.device_id) == (seeded.elder_id, seeded.device_id)
        assert _orders_of_call(stack, call.id) == 1
        assert press.result(60).ok
    _record(stack, "platform killed in the SOS intake")
    called_back_once(stack, sipp_dir, _abandoned_with_one_order(stack, before))


def test_killed_while_the_agent_talks_to_the_elder_the_call_is_completed_as_answered(
        stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    agent.register()
    agent.answer("answer_until_bye", ring_ms=300)
    harness.add_queue_member(stack, "emergency", seeded.agent_extension, "agent-test")
    try:
        with ThreadPoolExecutor(1) as pool:
            press = _press_sos(stack, pool, sipp_dir, hold_ms=5000)
            harness.eventually(lambda: _sos_since(stack, before, lambda c: c.answered_at is not None),
                               what="the agent talking to the elder")
            stack.kill_platform()
            assert press.result(40).ok
        assert agent.wait(20).ok
        _record(stack, "platform killed while the agent talks")
    finally:
        agent.stop()
        harness.remove_queue_member(stack, "emergency", seeded.agent_extension)
    _restart(stack)
    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the SOS completed")
    assert call.disposition is Disposition.ANSWERED
    assert _orders_of_call(stack, call.id) == 1
    assert "sos_abandoned" not in _order_actions(stack, order.id)  # answered: no callback is ever owed


def test_killed_just_after_the_elder_hung_up_the_callback_is_owed_once(stack: harness.Stack,
                                                                       sipp_dir: Path) -> None:
    before = _last_sos_id(stack)
    with ThreadPoolExecutor(1) as pool:
        press = _press_sos(stack, pool, sipp_dir, hold_ms=2000)
        harness.eventually(lambda: _sos_since(stack, before, lambda c: c.ended_at is not None),
                           what="the SOS's end stored")
        stack.kill_platform()
        assert press.result(30).ok
    _record(stack, "platform killed just after the hang-up")
    _restart(stack)
    called_back_once(stack, sipp_dir, _abandoned_with_one_order(stack, before))


# -- the AMI link dropped with a callback's Originate in flight ----------------------------------------------------

def _drop_ami_link(stack: harness.Stack) -> None:
    """Abort the platform's AMI TCP connection in the kernel (``ss -K``), as a network fault or a firewall reset
    would: the platform sees the connection lost mid-action and reconnects."""
    port = str(stack.settings.ami.port)
    result = subprocess.run(["ss", "-K", "dst", stack.settings.ami.host, "dport", "=", port], capture_output=True,
                            text=True, timeout=10, check=False)
    assert result.returncode == 0 and f":{port}" in result.stdout, result.stdout + result.stderr


def _callback_calls(stack: harness.Stack, order_id: int) -> list[Call]:
    async def fetch(db: Database) -> list[Call]:
        async with db.transaction(read_only=True) as session:
            return list((await session.scalars(select(Call).where(Call.linkedid.like(f"ccb{order_id}-%")))).all())

    return stack.query(fetch)  # type: ignore[no-any-return]


def test_a_callback_ringing_when_the_ami_link_drops_is_not_dialled_twice(stack: harness.Stack,
                                                                         sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    with ThreadPoolExecutor(1) as pool:
        assert _press_sos(stack, pool, sipp_dir, hold_ms=2000).result(30).ok
    order_id = _abandoned_with_one_order(stack, before)
    harness.eventually(lambda: "sos_abandoned" in _order_actions(stack, order_id), what="the callback owed")

    device = harness.Phone(stack, seeded.device_user, seeded.device_password, sipp_dir)
    device.register()
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    agent.register()
    device.answer("answer", ring_ms=300, talk_ms=1500)
    agent.answer("answer_until_bye", ring_ms=6000)  # rings long enough for the link to drop meanwhile
    try:
        harness.add_queue_member(stack, "emergency", seeded.agent_extension, "agent-test")
        harness.eventually(lambda: any(m.get("Uniqueid", "").startswith(f"ccb{order_id}-")
                                       for m in harness.ami_action(stack, {"Action": "CoreShowChannels"})),
                           what="the agent's phone ringing for the callback")
        _drop_ami_link(stack)
        assert agent.wait(30).ok
        assert device.wait(30).ok  # the elder was reached, by that one ring
    finally:
        device.stop()
        agent.stop()
        harness.remove_queue_member(stack, "emergency", seeded.agent_extension)
    actions = harness.eventually(lambda: (a := _order_actions(stack, order_id)) and "sos_callback_started" in a
                                 and a, timeout=30, what="the callback settled from the call log")
    assert actions.count("sos_callback_dialling") == 1, actions
    assert actions.count("sos_callback_uncertain") == 1, actions
    assert actions.count("sos_callback_started") == 1 and "sos_callback_attempt_failed" not in actions, actions
    assert len(_callback_calls(stack, order_id)) == 1  # one Originate reached Asterisk, ever


# -- SQLite locked by another process ------------------------------------------------------------------------------

def test_sos_while_another_process_holds_the_sqlite_lock_reaches_the_agent_and_is_stored_once(
        stack: harness.Stack, sipp_dir: Path) -> None:
    """A backup or the CLI holding SQLite's write lock: the intake waits at most its deadline, the call events wait in
    the journal, and everything is stored once the lock is gone."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_call_id(stack)
    with harness.sqlite_locked_by_another_process(stack.settings.database_url):
        harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=8000)
        seconds = harness.sos_answer_to_queue_seconds(stack, seeded.device_user)
    harness.record_reliability("SQLite locked by another process", seconds)
    assert seconds < 3 + 1.5
    stored = harness.eventually(lambda: _stored_sos(stack, before), timeout=60, what="the SOS stored after the lock")
    assert stored.calls_of_linkedid == 1 and [o.kind for o in stored.orders] == [WorkOrderKind.EMERGENCY]
    assert stored.call.disposition is Disposition.ANSWERED
    assert (stored.call.elder_id, stored.call.device_id) == (seeded.elder_id, seeded.device_id)
