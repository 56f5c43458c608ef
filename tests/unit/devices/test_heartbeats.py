"""Devices' heartbeats over the real Mosquitto: a heartbeat sets the device's last heartbeat (the platform's clock)
and battery; a bad one, one from an unknown or retired device, or one too large is dropped and counted, and leaves
the device as it was."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from typing import Any

import pytest

from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.heartbeats import Heartbeats
from callcenter.devices.models import Device, DeviceStatus
from callcenter.telephony.device_topics import HEARTBEAT, device_topic, mqtt_username
from tests.mqtt import TestBroker, running
from tests.unit.alarms.factory import household

pytestmark = pytest.mark.timeout(60)


async def _device(db: Database, device_id: int) -> tuple[dt.datetime | None, int | None]:
    async with db.transaction(read_only=True) as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device.last_heartbeat_at, device.battery_percent


def _beat(**fields: Any) -> bytes:
    return json.dumps({"sent_at": dt.datetime.now(dt.UTC).isoformat(), **fields}).encode()


async def test_a_heartbeat_sets_the_last_heartbeat_and_battery_and_bad_ones_change_nothing(db: Database) -> None:
    home = await household(db)
    heartbeats = Heartbeats(db)
    before = utcnow()
    assert await heartbeats.receive(home.device_id, _beat(battery_percent=18, charging=False, signal_dbm=-97,
                                                          firmware="PD-2.4.1"), before)
    assert await _device(db, home.device_id) == (before, 18)

    # Without a battery (a mains-powered sensor): the time moves, the battery stays as last reported.
    later = before + dt.timedelta(minutes=15)
    assert await heartbeats.receive(home.device_id, _beat(), later)
    assert await _device(db, home.device_id) == (later, 18)

    much_later = later + dt.timedelta(minutes=15)
    for raw in (_beat(battery_percent=120), _beat(battery_percent="18"), b"{not json", _beat(colour="red"),
                json.dumps({"battery_percent": 50}).encode(), b"x" * 2000):
        assert not await heartbeats.receive(home.device_id, raw, much_later)
    assert await heartbeats.receive(2_000_000_000, _beat(battery_percent=50), much_later) is False
    assert await _device(db, home.device_id) == (later, 18)
    facts = (await heartbeats.health_checks())["device_heartbeats"].facts
    assert facts == {"stored": 2, "dropped_invalid_field": 4, "dropped_malformed": 1, "dropped_oversized": 1,
                     "dropped_unknown_device": 1}


async def test_a_retired_device_heartbeat_is_dropped(db: Database) -> None:
    home = await household(db, status=DeviceStatus.RETIRED)
    heartbeats = Heartbeats(db)
    assert not await heartbeats.receive(home.device_id, _beat(battery_percent=40), utcnow())
    assert await _device(db, home.device_id) == (None, None)


async def test_over_mqtt_a_device_heartbeat_reaches_its_row(db: Database, broker: TestBroker) -> None:
    home = await household(db)
    password = secrets.token_urlsafe(18)
    broker.broker.set_password(mqtt_username(home.device_id), password)
    heartbeats = Heartbeats(db)
    client = broker.platform_client()
    subscription = heartbeats.subscription()
    handled = asyncio.Event()

    async def handler(message: Any, publish: Any) -> None:
        await subscription.handler(message, publish)
        handled.set()

    client.subscribe(subscription.topic_filter, handler, on_refused=subscription.on_refused)
    async with running(client), broker.device_client(home.device_id, password) as device:
        await device.publish(device_topic(home.device_id, HEARTBEAT), _beat(battery_percent=63), qos=1)
        async with asyncio.timeout(10):
            await handled.wait()
    last, battery = await _device(db, home.device_id)
    assert battery == 63 and last is not None and abs((utcnow() - last).total_seconds()) < 10
