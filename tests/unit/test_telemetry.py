"""The telemetry process (callcenter/telemetry.py): which process subscribes to what, and the real process — started
by its supervisor, taking readings from a device over the real Mosquitto into PostgreSQL at a lower CPU priority,
waking the platform's alarm distributor over MQTT, started again after kill -9, and ending with its parent."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select

from callcenter.alarms.models import Alarm, AlarmType
from callcenter.alarms.wake import WAKE_TOPIC
from callcenter.config import ConfigError, Settings
from callcenter.data_keys import platform_keyring
from callcenter.db.session import Database
from callcenter.mosquitto.broker import MosquittoBroker
from callcenter.mosquitto.choice import choose_broker
from callcenter.platform import assemble, mqtt_client
from callcenter.processes import alive
from callcenter.telemetry import TelemetrySupervisor, load_telemetry
from callcenter.telephony.ami import AmiClient
from callcenter.telephony.device_topics import ALARM, READING, ack_topic, device_filter, device_topic, mqtt_username
from callcenter.telephony.mqtt import MqttClient, MqttEndpoint, MqttMessage, Publish
from tests import harness
from tests.mqtt import eventually, running
from tests.unit.alarms.factory import household
from tests.unit.readings.factory import counts, raw, reading

pytestmark = pytest.mark.timeout(120)

POSTGRES = "postgresql://127.0.0.1:5432/unused"  # assembling connects to nothing


def _environment(tmp_path: Path, database: str, **extra: str) -> dict[str, str]:
    return {**{key: value for key, value in os.environ.items() if not key.startswith("CC_")},
            "CC_DATA_DIR": str(tmp_path / "data"), "CC_DATABASE_URL": database, "CC_LOG_LEVEL": "info",
            **({} if "CC_MQTT_URL" in extra else {"CC_MQTT_BIND": f"127.0.0.1:{harness.free_tcp_port()}"}), **extra}


def _assembled_filters(settings: Settings) -> tuple[MqttClient, Any]:
    db = Database(settings.database_url)
    mqtt = MqttClient(MqttEndpoint("127.0.0.1", settings.mqtt_bind.port, "callcenter", "x"))
    assembly = assemble(settings, db=db, ami=AmiClient("127.0.0.1", 5038, "u", "s"), mqtt=mqtt)
    return mqtt, assembly


async def test_with_the_telemetry_process_the_platform_lets_go_of_readings_and_the_process_takes_only_them(
        tmp_path: Path) -> None:
    settings = Settings.from_env(_environment(tmp_path, POSTGRES, CC_TELEMETRY_PROCESS="on"))
    assert settings.telemetry_in_own_process
    platform, assembly = _assembled_filters(settings)
    assert device_filter(READING) not in platform.topic_filters
    assert platform.released_filters == (device_filter(READING),)
    assert {device_filter(ALARM), WAKE_TOPIC} <= set(platform.topic_filters)
    assert assembly.telemetry is not None
    report = (await assembly.health.check()).checks["telemetry_process"]  # not started here: said so
    assert (report.ok, report.detail) == (False, "the telemetry process is not running: starting")

    telemetry = MqttClient(MqttEndpoint("127.0.0.1", 1, "callcenter-telemetry", "x"))
    load_telemetry(settings, db=Database(settings.database_url), ami=AmiClient("127.0.0.1", 5038, "u", "s"),
                   mqtt=telemetry, broker=choose_broker(settings))
    assert telemetry.topic_filters == (device_filter(READING),)
    assert telemetry.subscribed_filters == (f"$share/telemetry/{device_filter(READING)}",)

    # Off (the default), the platform's process takes the readings itself.
    for environment in (_environment(tmp_path, POSTGRES, CC_TELEMETRY_PROCESS="off"), _environment(tmp_path, POSTGRES),
                        _environment(tmp_path, "sqlite:///" + str(tmp_path / "db.sqlite3"))):
        settings = Settings.from_env(environment)
        assert not settings.telemetry_in_own_process
        platform, assembly = _assembled_filters(settings)
        assert device_filter(READING) in platform.topic_filters and platform.released_filters == ()
        assert assembly.telemetry is None


def test_the_telemetry_setting_refuses_what_cannot_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CC_TELEMETRY_PROCESS=on needs PostgreSQL"):
        Settings.from_env(_environment(tmp_path, "sqlite:///" + str(tmp_path / "db.sqlite3"),
                                       CC_TELEMETRY_PROCESS="on"))
    with pytest.raises(ConfigError, match="needs MQTT"):
        Settings.from_env(_environment(tmp_path, POSTGRES, CC_TELEMETRY_PROCESS="on", CC_MQTT_URL="off"))
    with pytest.raises(ConfigError, match="CC_TELEMETRY_PROCESS"):
        Settings.from_env(_environment(tmp_path, POSTGRES, CC_TELEMETRY_PROCESS="sometimes"))
    with pytest.raises(ConfigError, match="CC_TELEMETRY_NICE"):
        Settings.from_env(_environment(tmp_path, POSTGRES, CC_TELEMETRY_NICE="20"))


async def _answer(device: aiomqtt.Client, message_id: str, timeout: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for message in device.messages:
            answer: dict[str, Any] = json.loads(message.payload)
            if answer.get("message_id") == message_id:
                return answer
    raise AssertionError("the device's messages ended")


async def _send(device: aiomqtt.Client, topic: str, document: dict[str, Any]) -> dict[str, Any]:
    """As a device does: send, and send again every 2 s until answered (the first ones may come before the
    telemetry process has subscribed at all)."""
    for _attempt in range(15):
        await device.publish(topic, raw(document), qos=1)
        try:
            return await _answer(device, document["message_id"], timeout=2.0)
        except TimeoutError:
            continue
    raise AssertionError(f"{document['message_id']} was never answered")


def _command() -> list[str]:
    return [sys.executable, "-m", "callcenter", "telemetry"]


@pytest.fixture(params=[backend for backend in harness.backends() if backend == "postgresql"])
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated PostgreSQL database: the telemetry process runs on nothing else (on SQLite the setting refuses
    it: test_the_telemetry_setting_refuses_what_cannot_work). CI always has PostgreSQL (.ci/run)."""
    with harness.database_url(request.param, tmp_path) as url:
        harness.migrated_database(url)
        yield url


@pytest.fixture
async def telemetry_stack(postgres_url: str, tmp_path: Path) -> AsyncIterator[
        tuple[dict[str, str], Settings, MosquittoBroker, Database]]:
    """The telemetry process's world: the data keys, and the platform-managed Mosquitto rendered for its
    settings."""
    environment = _environment(tmp_path, postgres_url, CC_TELEMETRY_PROCESS="on")
    settings = Settings.from_env(environment)
    broker = harness.start_mosquitto(settings)
    db = Database(postgres_url, await platform_keyring(settings))
    try:
        yield environment, settings, broker, db
    finally:
        await db.dispose()
        broker.stop()


async def test_the_telemetry_process_takes_readings_wakes_the_distributor_and_comes_back_after_kill_9(
        telemetry_stack: tuple[dict[str, str], Settings, MosquittoBroker, Database]) -> None:
    environment, settings, broker, db = telemetry_stack
    home = await household(db)
    password = secrets.token_urlsafe(18)
    broker.set_password(mqtt_username(home.device_id), password)
    woken = asyncio.Event()

    async def on_wake(_message: MqttMessage, _publish: Publish) -> None:
        woken.set()

    platform = mqtt_client(settings, choose_broker(settings))  # the platform's own account and client id
    platform.subscribe(WAKE_TOPIC, on_wake)
    supervisor = TelemetrySupervisor(_command(), environment=environment)
    topic = device_topic(home.device_id, READING)
    device = aiomqtt.Client("127.0.0.1", broker.bind.port, username=mqtt_username(home.device_id),
                            password=password, timeout=5)
    async with running(platform), device:
        await device.subscribe(ack_topic(home.device_id), qos=1)
        await supervisor.start()
        try:
            await eventually(lambda: supervisor.pid is not None, what="the telemetry process")
            first_pid = supervisor.pid
            assert first_pid is not None
            # Below the platform's priority (once started up): a contested core goes to the red button first.
            nice = os.getpriority(os.PRIO_PROCESS, 0) + 10
            await eventually(lambda: os.getpriority(os.PRIO_PROCESS, first_pid) == nice, timeout=30,
                             what="the telemetry process's lower priority")

            assert (await _send(device, topic, reading("spo2", {"percent": 97}, message_id="t-1")))["status"] == \
                "stored"
            assert not woken.is_set()  # nothing out of range, no alarm, no wake

            urgent = reading("blood_pressure", {"systolic_mmhg": 186, "diastolic_mmhg": 112}, message_id="t-2")
            await device.publish(topic, raw(urgent), qos=1)
            assert (await _answer(device, "t-2"))["status"] == "stored"
            await asyncio.wait_for(woken.wait(), 10)  # the platform's distributor would now offer it
            async with db.transaction(read_only=True) as session:
                [alarm] = list(await session.scalars(select(Alarm)))
                assert (alarm.type, alarm.elder_id) == (AlarmType.VITAL_SIGN, home.elder_id)

            # kill -9: the supervisor starts it again; what the device sends meanwhile waits in its session.
            os.kill(first_pid, signal.SIGKILL)
            await device.publish(topic, raw(reading("heart_rate", {"bpm": 72}, message_id="t-3")), qos=1)
            await eventually(lambda: supervisor.restarts == 1 and supervisor.pid not in (None, first_pid),
                             timeout=20, what="the telemetry process started again")
            assert (await _answer(device, "t-3"))["status"] == "stored"
            checks = await supervisor.health_checks()
            assert checks["telemetry_process"].ok
            assert checks["telemetry_process"].detail.endswith("restarted 1 times")
            assert await counts(db) == {"Reading": 3, "ReadingMessage": 3, "Alarm": 1, "WorkOrder": 1}
            second_pid = supervisor.pid
        finally:
            await supervisor.stop()
    assert second_pid is not None and not alive(second_pid)
    assert not (await supervisor.health_checks())["telemetry_process"].ok


async def test_the_telemetry_process_ends_with_its_parent(
        telemetry_stack: tuple[dict[str, str], Settings, MosquittoBroker, Database]) -> None:
    """A platform killed with -9 must leave no telemetry process behind to compete with the next one."""
    environment = telemetry_stack[0]
    # A stand-in for the platform: it starts the telemetry process naming itself as its parent, then waits.
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os, subprocess, sys, time; "
                              "child = subprocess.Popen([*sys.argv[1:], '--parent', str(os.getpid())]); "
                              "print(child.pid, flush=True); time.sleep(120)", *_command(),
        env=environment, stdout=asyncio.subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = int(await asyncio.wait_for(parent.stdout.readline(), 30))
        await eventually(lambda: alive(child), what="the telemetry process")
        parent.kill()
        await parent.wait()
        await eventually(lambda: not alive(child), timeout=20, what="the telemetry process ending with its parent")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
