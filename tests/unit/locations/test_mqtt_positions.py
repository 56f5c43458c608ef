"""Positions over MQTT against the real Mosquitto: a watch's fixes at night, home, home, 1.5 km out, 2 km out, are
each acknowledged once stored (kind "position") and raise exactly one geofence alarm, at the first fix outside; a
repeat is acknowledged again with nothing stored twice; bad messages are answered "rejected" with the protocol's
reason and field, and leave nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import func, select

from callcenter.alarms.models import Alarm, AlarmType
from callcenter.db.session import Database
from callcenter.locations.models import Position
from callcenter.locations.mqtt import MqttPositions
from callcenter.telephony.device_topics import POSITION, ack_topic, device_topic, mqtt_username
from tests.mqtt import TestBroker, running
from tests.unit.alarms.factory import HOME, household
from tests.unit.locations.factory import NIGHT, east_of, fix, home_fence, intake, raw
from tests.unit.supervision_cases.factory import SHANGHAI

pytestmark = pytest.mark.timeout(60)


async def _answer(device: aiomqtt.Client, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for incoming in device.messages:
            return json.loads(incoming.payload)  # type: ignore[arg-type]
    raise AssertionError("no answer")


async def _count(db: Database, model: type) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _platform(broker: TestBroker, positions: MqttPositions) -> Any:
    client = broker.platform_client()
    subscription = positions.subscription()
    client.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                     max_batch=subscription.max_batch)
    return client


async def test_a_walk_out_of_the_fence_at_night_raises_one_geofence_alarm(db: Database, broker: TestBroker) -> None:
    home = await household(db)
    await home_fence(db, home.elder_id)  # 500 m around home, out allowed 07:00–20:00
    password = secrets.token_urlsafe(18)
    broker.broker.set_password(mqtt_username(home.device_id), password)
    positions = MqttPositions(intake(db), SHANGHAI)
    topic = device_topic(home.device_id, POSITION)
    walk = [HOME, east_of(HOME, 120), east_of(HOME, 1500), east_of(HOME, 2000)]
    async with running(_platform(broker, positions)), broker.device_client(home.device_id, password) as device:
        await device.subscribe(ack_topic(home.device_id), qos=1)
        for n, where in enumerate(walk):
            document = fix(where, message_id=f"w-pos-{n}", measured_at=NIGHT + dt.timedelta(minutes=5 * n))
            await device.publish(topic, raw(document), qos=1)
            answer = await _answer(device)
            assert (answer["message_id"], answer["kind"], answer["status"]) == (f"w-pos-{n}", "position", "stored")
            assert answer["received_at"].endswith("+08:00")
            assert await _count(db, Position) == n + 1  # stored before the answer
            alarms = await _count(db, Alarm)
            assert alarms == (0 if n < 2 else 1), (n, alarms)  # raised with the first fix outside, committed with it
        await device.publish(topic, raw(fix(walk[2], message_id="w-pos-2", measured_at=NIGHT)), qos=1)  # resent
        assert (await _answer(device))["status"] == "stored"
        assert await _count(db, Position) == 4

        await device.publish(topic, raw(fix(HOME, message_id="bad-1", source="gnss")), qos=1)
        assert {k: v for k, v in (await _answer(device)).items() if k != "received_at"} == {
            "message_id": "bad-1", "kind": "position", "status": "rejected", "reason": "invalid", "field": "source"}
        await device.publish(topic, b"{not json", qos=1)
        rejected = await _answer(device)
        assert (rejected["message_id"], rejected["reason"]) == (None, "not_json")
        await device.publish(topic, b"x" * (broker.platform_client().max_payload + 1), qos=1)
        assert (await _answer(device))["reason"] == "payload_too_large"
    async with db.transaction(read_only=True) as session:
        [alarm] = (await session.scalars(select(Alarm))).all()
        assert (alarm.type, alarm.payload["event"], alarm.payload["position_message_id"]) == (
            AlarmType.GEOFENCE, "exit", "w-pos-2")
    assert await _count(db, Position) == 4
    facts = (await positions.intake.health_checks())["position_intake"].facts
    assert (facts["stored"], facts["duplicates"], facts["geofence_alarms"], facts["refused"]) == (4, 1, 1, 3)


async def test_a_fix_from_a_device_the_platform_does_not_know_is_rejected(db: Database, broker: TestBroker) -> None:
    device_id, password = broker.new_device()
    async with running(_platform(broker, MqttPositions(intake(db), SHANGHAI))), \
            broker.device_client(device_id, password) as device:
        await device.subscribe(ack_topic(device_id), qos=1)
        await device.publish(device_topic(device_id, POSITION), raw(fix(HOME, message_id="lost-1")), qos=1)
        answer = await _answer(device)
        assert (answer["message_id"], answer["kind"], answer["status"], answer["reason"]) == (
            "lost-1", "position", "rejected", "unknown_device")
    assert await _count(db, Position) == 0
