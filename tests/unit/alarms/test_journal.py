"""Alarms while the database cannot write: the intake gives a device's message CC_ALARM_INTAKE_SECONDS, then keeps
it in the alarms' journal (fsynced) and acknowledges it; later messages go behind it without waiting; once the
database answers, the journal is replayed in arrival order and each alarm is stored exactly once — a repeat
journaled twice included. The database is blocked for real: SQLite's write lock held by another process,
PostgreSQL's row lock on the device held by another connection."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.alarms.intake import AlarmIntake, AlarmRefused, ReceiptOutcome, RefusalReason
from callcenter.alarms.models import Alarm, AlarmMessage, AlarmSource, AlarmType
from callcenter.alarms.mqtt import MqttAlarms
from callcenter.db.session import Database
from callcenter.devices.models import Device
from callcenter.journal import Journal
from callcenter.orders.models import WorkOrder
from callcenter.telephony.device_topics import ALARM, ack_topic, device_topic, mqtt_username
from tests import harness
from tests.mqtt import TestBroker, running
from tests.unit.alarms.factory import MERGE, SKEW, household, message, raw
from tests.unit.supervision_cases.factory import SHANGHAI

pytestmark = pytest.mark.timeout(90)

DEADLINE = 1.0


def _journaling_intake(db: Database, directory: Path) -> tuple[AlarmIntake, Journal]:
    journal = Journal(directory, name="alarms")
    return AlarmIntake(db, merge_window=MERGE, clock_skew=SKEW, tz=SHANGHAI, journal=journal,
                       deadline=DEADLINE), journal


@contextlib.asynccontextmanager
async def _writes_blocked(url: str, device_id: int) -> AsyncIterator[None]:
    """The intake cannot write until the block ends: SQLite locked by another process (BEGIN IMMEDIATE), or on
    PostgreSQL the device's row locked by another connection (the intake takes that lock first)."""
    if url.startswith("sqlite"):
        with harness.sqlite_locked_by_another_process(url):
            yield
        return
    other = Database(url)
    try:
        async with other.transaction() as session:
            await session.get(Device, device_id, with_for_update=True)
            yield
    finally:
        await other.dispose()


async def _stored(db: Database, device_id: int) -> dict[str, Any]:
    async with db.transaction(read_only=True) as session:
        alarms = (await session.scalars(select(Alarm).where(Alarm.device_id == device_id).order_by(Alarm.id))).all()
        messages = await session.scalar(select(func.count()).select_from(AlarmMessage)
                                        .where(AlarmMessage.device_id == device_id))
        orders = await session.scalar(select(func.count()).select_from(WorkOrder)
                                      .where(WorkOrder.id.in_([a.work_order_id for a in alarms])))
        return {"alarms": [(a.type, a.device_message_id, a.repeat_count) for a in alarms],
                "received_at": [a.received_at for a in alarms], "messages": messages, "orders": orders}


async def test_alarms_wait_in_the_journal_while_the_database_is_blocked_and_are_stored_once_in_order(
        db: Database, migrated_db_url: str, tmp_path: Path) -> None:
    home = await household(db)
    intake, journal = _journaling_intake(db, tmp_path / "alarm-journal")
    fall, smoke = message("fall-j1"), message("smoke-j1", "smoke")
    async with _writes_blocked(migrated_db_url, home.device_id):
        started = time.monotonic()
        first = await intake.receive_message(home.device_id, raw(fall), AlarmSource.MQTT)
        waited = time.monotonic() - started
        assert first.outcome is ReceiptOutcome.JOURNALED and first.alarm_id is None
        assert DEADLINE * 0.9 <= waited < DEADLINE + 3  # the deadline, not the lock's own timeout
        # The database is known to be away now: the device's repeat and the next alarm go behind, at once.
        started = time.monotonic()
        repeat = await intake.receive_message(home.device_id, raw(fall), AlarmSource.MQTT)
        second = await intake.receive_message(home.device_id, raw(smoke), AlarmSource.MQTT)
        assert time.monotonic() - started < DEADLINE
        assert {repeat.outcome, second.outcome} == {ReceiptOutcome.JOURNALED}
        assert journal.backlog == 3
        entries = [json.loads(line) for line in (tmp_path / "alarm-journal" / "journal.jsonl").read_text().splitlines()]
        assert [json.loads(e["payload"]["message"])["message_id"] for e in entries] == ["fall-j1", "fall-j1",
                                                                                        "smoke-j1"]
    # An attempt left in flight at the deadline may have committed the first one meanwhile: the replay finds it.
    assert await journal.replay(intake.replay_entry) == 3
    stored = await _stored(db, home.device_id)
    assert stored["alarms"] == [(AlarmType.FALL, "fall-j1", 0), (AlarmType.SMOKE, "smoke-j1", 0)]
    assert stored["messages"] == 2 and stored["orders"] == 2  # one row per message id, one order per alarm
    # Stored with the time each arrived, not the time of the replay.
    arrived = dt.datetime.fromisoformat(entries[0]["payload"]["received_at"])
    assert abs((stored["received_at"][0] - arrived).total_seconds()) < 0.01
    assert journal.backlog == 0
    checks = await intake.health_checks()
    facts = checks["alarm_intake"].facts
    assert (facts["journaled"], facts["replayed"], facts["received"]) == (3, 3, 3)

    # The database is back: the next alarm is stored at once, not journaled.
    later = await intake.receive_message(home.device_id, raw(message("gas-j1", "gas")), AlarmSource.MQTT)
    assert later.outcome is ReceiptOutcome.STORED and later.alarm_id is not None


async def test_a_journaled_alarm_of_a_device_unknown_to_the_database_is_refused_at_the_replay_and_counted(
        db: Database, migrated_db_url: str, tmp_path: Path) -> None:
    home = await household(db)
    intake, journal = _journaling_intake(db, tmp_path / "alarm-journal")
    async with _writes_blocked(migrated_db_url, home.device_id):
        receipt = await intake.receive_message(home.device_id, raw(message("fall-k1")), AlarmSource.MQTT)
        assert receipt.outcome is ReceiptOutcome.JOURNALED
        # Unknown to the database: only the database can say so, and it is away.
        ghost = await intake.receive_message(2_000_000_000, raw(message("fall-k2")), AlarmSource.MQTT)
        assert ghost.outcome is ReceiptOutcome.JOURNALED
    assert await journal.replay(intake.replay_entry) == 2
    assert [a[1] for a in (await _stored(db, home.device_id))["alarms"]] == ["fall-k1"]
    assert (await intake.health_checks())["alarm_intake"].facts["refused_after_journal"] == 1
    assert journal.backlog == 0  # refused for good: not retried for ever


async def test_a_message_the_intake_refuses_on_its_face_is_not_journaled(db: Database, migrated_db_url: str,
                                                                         tmp_path: Path) -> None:
    home = await household(db)
    intake, journal = _journaling_intake(db, tmp_path / "alarm-journal")
    async with _writes_blocked(migrated_db_url, home.device_id):
        with pytest.raises(AlarmRefused) as refused:
            await intake.receive_message(home.device_id, raw({**message("x-1"), "type": "meteor"}), AlarmSource.MQTT)
        assert refused.value.field == "type"
        future = message("x-2", occurred_at=dt.datetime(2099, 1, 1, tzinfo=SHANGHAI))
        with pytest.raises(AlarmRefused) as refused:
            await intake.receive_message(home.device_id, raw(future), AlarmSource.MQTT)
        assert refused.value.reason is RefusalReason.FUTURE_TIME
    assert journal.backlog == 0


async def _answer(device: Any, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for incoming in device.messages:
            return json.loads(incoming.payload)  # type: ignore[no-any-return]
    raise AssertionError("no answer")


async def test_over_mqtt_the_device_is_answered_stored_while_the_database_is_blocked(
        db: Database, migrated_db_url: str, tmp_path: Path, broker: TestBroker) -> None:
    home = await household(db)
    password = secrets.token_urlsafe(18)
    broker.broker.set_password(mqtt_username(home.device_id), password)
    intake, journal = _journaling_intake(db, tmp_path / "alarm-journal")
    alarms = MqttAlarms(intake, SHANGHAI)
    client = broker.platform_client()
    subscription = alarms.subscription()
    client.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                     max_batch=subscription.max_batch)
    async with running(client), broker.device_client(home.device_id, password) as device:
        await device.subscribe(ack_topic(home.device_id), qos=1)
        async with _writes_blocked(migrated_db_url, home.device_id):
            await device.publish(device_topic(home.device_id, ALARM), raw(message("fall-m1")), qos=1)
            answer = await _answer(device)
            assert (answer["message_id"], answer["status"]) == ("fall-m1", "stored")
            assert journal.backlog == 1
    await journal.replay(intake.replay_entry)
    assert [a[1] for a in (await _stored(db, home.device_id))["alarms"]] == ["fall-m1"]
