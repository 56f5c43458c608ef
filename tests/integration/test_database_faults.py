"""The red button while the database is down or hangs: a PostgreSQL server of the test's own, stopped for real, and
a TCP proxy in front of it that stops forwarding (test code, loopback only). The elder hears music at once and
reaches an agent within the intake deadline; what could not be written waits in the journal and is stored once
the database is back — nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from callcenter.alarms.models import Alarm
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.recordings.models import Recording
from callcenter.telephony.device_topics import ALARM, ack_topic, device_topic
from tests import harness
from tests.integration.conftest import running_stack

pytestmark = pytest.mark.integration

INTAKE_SECONDS = 3  # CC_SOS_INTAKE_SECONDS, the default
ALARM_INTAKE_SECONDS = 3  # CC_ALARM_INTAKE_SECONDS, the default


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


def test_an_alarm_while_the_database_is_stalled_is_acknowledged_from_the_journal_and_stored_once_it_flows(
        faulty: FaultyDatabase) -> None:
    """A fall over MQTT while the platform's database connection hangs: the device is answered "stored" within
    CC_ALARM_INTAKE_SECONDS (journaled), its resend too (at once: the journal is known to be waiting), and once the
    connection flows the alarm is stored exactly once, with its work order."""
    stack = faulty.stack
    seeded = stack.seeded  # type: ignore[attr-defined]
    assert stack.mqtt is not None
    status, issued = stack.api("POST", f"/api/v1/devices/{seeded.device_id}/mqtt-password", {}, stack.token())
    assert status == 200, issued
    message_id = f"fall-stalled-{secrets.token_hex(4)}"
    fall = json.dumps({"message_id": message_id, "type": "fall",
                       "occurred_at": dt.datetime.now(dt.UTC).isoformat()}).encode()

    async def device_session() -> list[tuple[dict[str, Any], float]]:
        answers: list[tuple[dict[str, Any], float]] = []
        async with aiomqtt.Client("127.0.0.1", stack.mqtt.bind.port, username=issued["mqtt_username"],
                                  password=issued["generated_mqtt_password"], timeout=10) as device:
            await device.subscribe(ack_topic(seeded.device_id), qos=1)
            for _ in range(2):  # the alarm, then the device's resend of it (it missed the first answer)
                sent = time.monotonic()
                await device.publish(device_topic(seeded.device_id, ALARM), fall, qos=1)
                async with asyncio.timeout(ALARM_INTAKE_SECONDS + 10):
                    async for incoming in device.messages:
                        answers.append((json.loads(incoming.payload), time.monotonic() - sent))  # type: ignore[arg-type]
                        break
        return answers

    faulty.proxy.stall()
    try:
        answers = asyncio.run(device_session())
    finally:
        faulty.proxy.resume()
    assert [(answer["message_id"], answer["status"]) for answer, _ in answers] == [(message_id, "stored")] * 2
    (_, first), (_, resend) = answers
    harness.record_reliability("device alarm, database connection stalled", first, measure="alarm_to_ack_seconds")
    assert first < ALARM_INTAKE_SECONDS + 2 and resend < 1.5

    def stored() -> tuple[int, int | None] | None:
        async def fetch(db: Database) -> tuple[int, int | None] | None:
            async with db.transaction(read_only=True) as session:
                alarms = (await session.scalars(select(Alarm).where(Alarm.device_message_id == message_id))).all()
                return (len(alarms), alarms[0].work_order_id) if alarms else None

        return stack.query(fetch)  # type: ignore[no-any-return]

    count, order_id = harness.eventually(stored, timeout=60, what="the alarm replayed from the journal")
    assert count == 1 and order_id is not None
    harness.eventually(lambda: stack.get("/healthz")[1]["checks"]["alarm_journal"]["backlog"] == 0, timeout=10,
                       what="the alarms' journal empty on /healthz")
