"""Alarms over MQTT against the real Mosquitto: a device's fall alarm is stored and then acknowledged, a repeat is
acknowledged again without a second alarm, and bad messages are answered "rejected" with their reason and field,
with nothing stored."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import func, select

from callcenter.alarms.models import Alarm
from callcenter.alarms.mqtt import MqttAlarms
from callcenter.db.session import Database
from callcenter.telephony.device_topics import ALARM, ack_topic, device_topic, mqtt_username
from tests.mqtt import TestBroker, running
from tests.unit.alarms.factory import household, intake, message, raw
from tests.unit.supervision_cases.factory import SHANGHAI

pytestmark = pytest.mark.timeout(60)


async def _answer(device: aiomqtt.Client, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for incoming in device.messages:
            return json.loads(incoming.payload)  # type: ignore[arg-type]
    raise AssertionError("no answer")


async def _alarms(db: Database) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(Alarm)) or 0)


async def test_a_device_alarm_is_acknowledged_once_stored_and_bad_ones_are_rejected(db: Database,
                                                                                   broker: TestBroker) -> None:
    home = await household(db)
    password = secrets.token_urlsafe(18)
    broker.broker.set_password(mqtt_username(home.device_id), password)
    alarms = MqttAlarms(intake(db), SHANGHAI)
    client = broker.platform_client()
    subscription = alarms.subscription()
    client.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                     max_batch=subscription.max_batch)
    topic = device_topic(home.device_id, ALARM)
    async with running(client), broker.device_client(home.device_id, password) as device:
        await device.subscribe(ack_topic(home.device_id), qos=1)

        fall = message("fall-1", position={"lat": 39.9138, "lon": 116.3636, "accuracy_m": 8, "source": "gps"})
        await device.publish(topic, raw(fall), qos=1)
        answer = await _answer(device)
        assert (answer["message_id"], answer["kind"], answer["status"]) == ("fall-1", "alarm", "stored")
        assert answer["received_at"].endswith("+08:00")
        assert await _alarms(db) == 1  # stored before the answer

        await device.publish(topic, raw(fall), qos=1)  # the device did not see the answer: the same message again
        assert (await _answer(device))["status"] == "stored"
        assert await _alarms(db) == 1

        await device.publish(topic, raw(message("bad-1", alarm_type="earthquake")), qos=1)
        assert {k: v for k, v in (await _answer(device)).items() if k != "received_at"} == {
            "message_id": "bad-1", "kind": "alarm", "status": "rejected", "reason": "invalid", "field": "type"}

        await device.publish(topic, b"{not json", qos=1)
        rejected = await _answer(device)
        assert (rejected["message_id"], rejected["reason"]) == (None, "not_json")

        await device.publish(topic, b"x" * (client.max_payload + 1), qos=1)
        assert (await _answer(device))["reason"] == "payload_too_large"
        assert await _alarms(db) == 1
        assert alarms.intake.refused and sum(alarms.intake.refused.values()) == 3


async def test_an_alarm_from_a_device_the_platform_does_not_know_is_rejected(db: Database,
                                                                             broker: TestBroker) -> None:
    device_id, password = broker.new_device()  # an account on the broker, no device on the platform
    client = broker.platform_client()
    subscription = MqttAlarms(intake(db), SHANGHAI).subscription()
    client.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                     max_batch=subscription.max_batch)
    async with running(client), broker.device_client(device_id, password) as device:
        await device.subscribe(ack_topic(device_id), qos=1)
        await device.publish(device_topic(device_id, ALARM), raw(message("lost-1")), qos=1)
        answer = await _answer(device)
        assert (answer["message_id"], answer["status"], answer["reason"]) == ("lost-1", "rejected", "unknown_device")
    assert await _alarms(db) == 0
