"""Readings over MQTT against the real Mosquitto: a blood pressure over threshold is stored, raises a vital-sign
alarm of the right severity and only then is acknowledged; a repeat is acknowledged again without a second reading;
bad messages are answered "rejected" with their reason and the field, with nothing stored."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select

from callcenter.alarms.models import Alarm, AlarmSeverity, AlarmSource, AlarmType
from callcenter.db.session import Database
from callcenter.readings.mqtt import MqttReadings
from callcenter.telephony.device_topics import READING, ack_topic, device_topic, mqtt_username
from tests.mqtt import TestBroker, running
from tests.unit.alarms.factory import household
from tests.unit.readings.factory import counts, intake, raw, reading
from tests.unit.supervision_cases.factory import SHANGHAI

pytestmark = pytest.mark.timeout(60)


async def _answer(device: aiomqtt.Client, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for incoming in device.messages:
            return json.loads(incoming.payload)  # type: ignore[arg-type]
    raise AssertionError("no answer")


def _without_time(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "received_at"}


async def test_a_blood_pressure_over_threshold_raises_an_alarm_and_is_acknowledged_once_stored(
        db: Database, broker: TestBroker) -> None:
    home = await household(db)
    password = secrets.token_urlsafe(18)
    broker.broker.set_password(mqtt_username(home.device_id), password)
    readings = MqttReadings(intake(db), SHANGHAI)
    client = broker.platform_client()
    subscription = readings.subscription()
    client.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                     max_batch=subscription.max_batch)
    topic = device_topic(home.device_id, READING)
    async with running(client), broker.device_client(home.device_id, password) as device:
        await device.subscribe(ack_topic(home.device_id), qos=1)

        urgent = reading("blood_pressure", {"systolic_mmhg": 186, "diastolic_mmhg": 112, "pulse_bpm": 88},
                         message_id="bp-2291-000118")
        await device.publish(topic, raw(urgent), qos=1)
        answer = await _answer(device)
        assert _without_time(answer) == {"message_id": "bp-2291-000118", "kind": "reading", "status": "stored"}
        assert answer["received_at"].endswith("+08:00")
        async with db.transaction(read_only=True) as session:  # stored, with its alarm, before the answer
            [alarm] = list(await session.scalars(select(Alarm)))
            assert (alarm.type, alarm.severity, alarm.source, alarm.elder_id) == (
                AlarmType.VITAL_SIGN, AlarmSeverity.HIGH, AlarmSource.MQTT, home.elder_id)
            assert alarm.work_order_id is not None
            assert {breach["measure"] for breach in alarm.payload["breaches"]} == {"systolic_mmhg", "diastolic_mmhg"}
        assert await counts(db) == {"Reading": 1, "ReadingMessage": 1, "Alarm": 1, "WorkOrder": 1}

        await device.publish(topic, raw(urgent), qos=1)  # the device did not see the answer: the same message again
        assert _without_time(await _answer(device))["status"] == "stored"
        assert await counts(db) == {"Reading": 1, "ReadingMessage": 1, "Alarm": 1, "WorkOrder": 1}

        crisis = reading("blood_pressure", {"systolic_mmhg": 230, "diastolic_mmhg": 125}, message_id="bp-2")
        await device.publish(topic, raw(crisis), qos=1)
        assert _without_time(await _answer(device))["status"] == "stored"
        async with db.transaction(read_only=True) as session:  # counted on the open alarm, now critical
            [alarm] = list(await session.scalars(select(Alarm)))
            assert (alarm.repeat_count, alarm.severity) == (1, AlarmSeverity.CRITICAL)

        bad = reading("blood_pressure", {"systolic_mmhg": "186", "diastolic_mmhg": 112}, message_id="bad-1")
        await device.publish(topic, raw(bad), qos=1)
        assert _without_time(await _answer(device)) == {
            "message_id": "bad-1", "kind": "reading", "status": "rejected", "reason": "invalid",
            "field": "values.systolic_mmhg"}

        await device.publish(topic, b"{not json", qos=1)
        rejected = await _answer(device)
        assert (rejected["message_id"], rejected["reason"]) == (None, "not_json")

        await device.publish(topic, b"x" * (client.max_payload + 1), qos=1)
        assert (await _answer(device))["reason"] == "payload_too_large"
        assert await counts(db) == {"Reading": 2, "ReadingMessage": 2, "Alarm": 1, "WorkOrder": 1}
        facts = (await readings.intake.health_checks())["reading_intake"].facts
        assert (facts["stored"], facts["duplicates"], facts["refused"]) == (2, 1, 3)


async def test_a_reading_from_a_device_the_platform_does_not_know_is_rejected(db: Database,
                                                                              broker: TestBroker) -> None:
    device_id, password = broker.new_device()  # an account on the broker, no device on the platform
    client = broker.platform_client()
    subscription = MqttReadings(intake(db), SHANGHAI).subscription()
    client.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                     max_batch=subscription.max_batch)
    async with running(client), broker.device_client(device_id, password) as device:
        await device.subscribe(ack_topic(device_id), qos=1)
        await device.publish(device_topic(device_id, READING), raw(reading(message_id="lost-1")), qos=1)
        answer = await _answer(device)
        assert _without_time(answer) == {"message_id": "lost-1", "kind": "reading", "status": "rejected",
                                         "reason": "unknown_device"}
    assert (await counts(db))["Reading"] == 0
