"""The red button while the database is down or hangs: a PostgreSQL server of the test's own, stopped for real, and
a TCP proxy in front of it that stops forwarding (test code, loopback only). The elder hears music at once and
reaches an agent within the intake deadline; what could not be written waits in the journal and is stored once
the database is back — nothing lost, nothing twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.recordings.models import Recording
from tests import harness
from tests.integration.conftest import running_stack

pytestmark = pytest.mark.integration

INTAKE_SECONDS = 3  # CC_SOS_INTAKE_SECONDS, the default


@dataclasses.dataclass
class FaultyDatabase:
    stack: harness.Stack
    postgres: harness.PrivatePostgres
    proxy: harness.StallableProxy


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, built_prompts: Path) -> Iterator[FaultyDatabase]:
    harness.require_tools()
    postgres = harness.PrivatePostgres()
    proxy = harness.StallableProxy(postgres.port)
    try:
        postgres.start()
        postgres.create_database()
        proxy.start()
        data_dir = tmp_path_factory.mktemp("stack-db-faults")
        with running_stack(data_dir, postgres.url(proxy.port), built_prompts) as stack:
            yield FaultyDatabase(stack, postgres, proxy)
    finally:
        proxy.close()
        postgres.remove()


def _last_call_id(stack: harness.Stack) -> int:
    async def fetch(db: Database) -> int:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(func.max(Call.id))) or 0

    return stack.query(fetch)  # type: ignore[no-any-return]


@dataclasses.dataclass
class StoredSos:
    call: Call
    orders: list[WorkOrder]
    calls_of_linkedid: int


def _stored_sos(stack: harness.Stack, after: int) -> StoredSos | None:
    """The SOS after call id ``after`` once its answer and its end are stored, with its orders."""
    async def fetch(db: Database) -> StoredSos | None:
        async with db.transaction(read_only=True) as session:
            call = await session.scalar(select(Call).where(Call.id > after, Call.kind == CallKind.SOS,
                                                           Call.ended_at.is_not(None)).order_by(Call.id).limit(1))
            if call is None:
                return None
            orders = (await session.scalars(select(WorkOrder).options(selectinload(WorkOrder.events))
                                            .where(WorkOrder.call_id == call.id))).all()
            same = await session.scalar(select(func.count()).select_from(Call).where(Call.linkedid == call.linkedid))
            return StoredSos(call, list(orders), same or 0)

    found = stack.query(fetch)
    return found if found is not None and found.orders and any(
        e.action == "answered_by_agent" for e in found.orders[0].events) else None


def _sos_reaches_the_agent_then_everything_is_stored(faulty: FaultyDatabase, sipp_dir: Path, *,
                                                     break_it: Callable[[], None], mend_it: Callable[[], None],
                                                     fault: str, calls: int = 1) -> list[float]:
    """``calls`` SOS calls, one after the other, while the database is broken; each reaches the agent, and all are
    stored once it is mended. Returns each call's answer→queue seconds (also kept as test artifacts)."""
    stack = faulty.stack
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_call_id(stack)
    seconds: list[float] = []
    break_it()
    try:
        for n in range(calls):
            # The agent's phone rings and is answered (asserted inside) while the database is away.
            harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=8000)
            seconds.append(harness.sos_answer_to_queue_seconds(stack, seeded.device_user))
            harness.record_reliability(fault if n == 0 else f"{fault} (a later SOS)", seconds[-1])
    finally:
        mend_it()
    after = before
    for _ in range(calls):
        stored = harness.eventually(lambda after=after: _stored_sos(stack, after), timeout=60,
                                    what="the SOS replayed from the journal")
        assert (stored.call.elder_id, stored.call.device_id) == (seeded.elder_id, seeded.device_id)
        assert stored.call.disposition is Disposition.ANSWERED and stored.call.agent_id is not None
        assert stored.calls_of_linkedid == 1
        assert [o.kind for o in stored.orders] == [WorkOrderKind.EMERGENCY]  # exactly one order
        actions = [e.action for e in stored.orders[0].events]
        assert actions.count("answered_by_agent") == 1 and actions.count("sos_step:emergency-queue") == 1, actions
        # The recording, whose collection failed while the database was away, is kept once it is back.
        assert stored.call.recording_serial
        harness.eventually(lambda stored=stored: _recording_stored(stack, stored.call.recording_serial), timeout=30,
                           what="the SOS recording collected")
        after = stored.call.id
    return seconds


def _recording_stored(stack: harness.Stack, serial: str | None) -> bool:
    async def fetch(db: Database) -> bool:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(Recording.id).where(Recording.serial_number == serial)) is not None

    return stack.query(fetch)  # type: ignore[no-any-return]


def _music_started_before_the_intake(stack: harness.Stack, device_user: str) -> bool:
    log = stack.runtime.host_path(stack.runtime.instance_dir / "log" / "console.log").read_text(errors="replace")
    lines = [line for line in log.splitlines() if device_user in line]
    music = next((i for i, line in enumerate(lines) if "Started music on hold" in line), None)
    intake = next((i for i, line in enumerate(lines) if "AGI(" in line and "/sos," in line), None)
    return music is not None and intake is not None and music < intake


def test_sos_with_postgresql_stopped_reaches_an_agent_and_is_stored_once_it_returns(
        faulty: FaultyDatabase, sipp_dir: Path) -> None:
    first, later = _sos_reaches_the_agent_then_everything_is_stored(
        faulty, sipp_dir, break_it=faulty.postgres.stop, mend_it=faulty.postgres.start, fault="PostgreSQL stopped",
        calls=2)
    assert first < INTAKE_SECONDS + 1.5
    assert later < 1.5  # the database is known to be away: the intake does not wait its full deadline again
    assert _music_started_before_the_intake(faulty.stack, faulty.stack.seeded.device_user)  # type: ignore[attr-defined]


def test_sos_with_the_database_connection_stalled_reaches_an_agent_and_is_stored_once_it_flows(
        faulty: FaultyDatabase, sipp_dir: Path) -> None:
    (seconds,) = _sos_reaches_the_agent_then_everything_is_stored(
        faulty, sipp_dir, break_it=faulty.proxy.stall, mend_it=faulty.proxy.resume,
        fault="database connection stalled")
    assert seconds < INTAKE_SECONDS + 1.5
