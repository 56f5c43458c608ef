"""The platform-managed Mosquitto: its rendered files, its accounts and ACL against the real broker, its process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import aiomqtt
import pytest

from callcenter.config import HostPort, Settings
from callcenter.mosquitto.broker import MosquittoBroker, MosquittoError, connect_host
from callcenter.mosquitto.choice import NOT_INSTALLED, BrokerMode, choose_broker, platform_password
from callcenter.telephony.device_topics import ALARM, ack_topic, device_filter, device_topic, mqtt_username
from callcenter.telephony.mqtt import MqttMessage, Publish
from tests.harness import free_tcp_port
from tests.mqtt import TestBroker, running

pytestmark = pytest.mark.timeout(30)


# -- rendering (no broker running) ----------------------------------------------------------------------------------
def test_the_configuration_refuses_anonymous_clients_and_names_its_own_files(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "mosquitto", HostPort("0.0.0.0", 1884), "callcenter")
    lines = broker.config_text().splitlines()
    for expected in ("allow_anonymous false", f"password_file {broker.password_file}", f"acl_file {broker.acl_file}",
                     "listener 1884 0.0.0.0", "use_username_as_clientid true", "persistence true",
                     f"persistence_location {broker.persistence_dir}/", "connection_messages false"):
        assert expected in lines, expected
    assert connect_host(broker.bind) == "127.0.0.1"
    assert connect_host(HostPort("192.0.2.7", 1884)) == "192.0.2.7"


def test_the_acl_gives_each_device_its_own_topics_and_the_platform_all(tmp_path: Path) -> None:
    acl = MosquittoBroker(tmp_path, HostPort("127.0.0.1", 1884), "platform-x").acl_text()
    rules = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert rules == [
        "pattern write cc/devices/%u/alarm", "pattern write cc/devices/%u/position",
        "pattern write cc/devices/%u/reading", "pattern write cc/devices/%u/heartbeat",
        "pattern read cc/devices/%u/ack",
        "user platform-x", "topic readwrite cc/devices/#", "topic readwrite cc/platform/#",
        "user platform-x-telemetry", "topic read cc/devices/+/reading", "topic write cc/devices/+/ack",
        "topic write cc/platform/#",
    ]


def test_render_keeps_devices_accounts_and_drops_a_former_platform_account(tmp_path: Path) -> None:
    directory = tmp_path / "mosquitto"
    MosquittoBroker(directory, HostPort("127.0.0.1", 1884), "old-name").render("first-password", "telemetry-1")
    broker = MosquittoBroker(directory, HostPort("127.0.0.1", 1884), "callcenter")
    broker.set_password("42", "device-password-42")  # the broker is not running: no reload needed
    broker.render("second-password", "telemetry-2")
    assert sorted(broker.accounts()) == ["42", "callcenter", "callcenter-telemetry"]
    for path in (broker.password_file, broker.acl_file, broker.config_file):
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    text = broker.password_file.read_text()
    assert "password" not in text and "telemetry-2" not in text and text.count("$7$") == 3  # hashes only
    assert broker.remove_account("42") and not broker.remove_account("42")
    assert sorted(broker.accounts()) == ["callcenter", "callcenter-telemetry"]


def test_bad_account_names_and_passwords_are_refused(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path, HostPort("127.0.0.1", 1884), "callcenter")
    with pytest.raises(ValueError, match="letters, digits"):
        broker.set_password("a/b", "password-1")
    with pytest.raises(ValueError, match="one non-empty line"):
        broker.set_password("7", "two\nlines")


def test_a_path_with_spaces_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(MosquittoError, match="spaces"):
        MosquittoBroker(tmp_path / "my data", HostPort("127.0.0.1", 1884), "callcenter").config_text()


# -- which broker ---------------------------------------------------------------------------------------------------
def test_the_broker_is_the_managed_one_by_default_another_when_named_or_none(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"CC_DATA_DIR": str(tmp_path)}
    managed = choose_broker(Settings.from_env(base))
    assert managed.mode is BrokerMode.MANAGED and managed.broker is not None and managed.endpoint is not None
    assert (managed.endpoint.host, managed.endpoint.port, managed.endpoint.username) == ("127.0.0.1", 1884,
                                                                                        "callcenter")
    secret = tmp_path / "secrets" / "mqtt-platform.secret"
    assert managed.endpoint.password == secret.read_text().strip()  # generated once, then kept
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert platform_password(Settings.from_env(base)) == managed.endpoint.password
    assert platform_password(Settings.from_env({**base, "CC_MQTT_PASSWORD": "given-one"})) == "given-one"

    external = choose_broker(Settings.from_env({**base, "CC_MQTT_URL": "mqtt://broker.example:1999",
                                                "CC_MQTT_USERNAME": "centre", "CC_MQTT_PASSWORD": "pw"}))
    assert external.mode is BrokerMode.EXTERNAL and external.broker is None
    assert external.endpoint is not None and (external.endpoint.host, external.endpoint.port,
                                              external.endpoint.username) == ("broker.example", 1999, "centre")

    off = choose_broker(Settings.from_env({**base, "CC_MQTT_URL": "off"}))
    assert (off.mode, off.endpoint, off.reason) == (BrokerMode.OFF, None, "CC_MQTT_URL=off")

    monkeypatch.setattr("callcenter.mosquitto.choice.mosquitto_binary", lambda: None)
    absent = choose_broker(Settings.from_env(base))
    assert (absent.mode, absent.endpoint, absent.reason) == (BrokerMode.OFF, None, NOT_INSTALLED)


# -- the real broker ------------------------------------------------------------------------------------------------
async def _connects(broker: TestBroker, username: str | None, password: str | None) -> bool:
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, username=username, password=password, timeout=5):
            return True
    except aiomqtt.MqttCodeError:
        return False


async def test_devices_log_in_with_their_own_password_only_until_it_changes(broker: TestBroker) -> None:
    device_id, password = broker.new_device()
    other_id, _ = broker.new_device()
    assert await _connects(broker, mqtt_username(device_id), password)
    assert not await _connects(broker, mqtt_username(device_id), password + "x")
    assert not await _connects(broker, mqtt_username(other_id), password)  # another device's id with this password
    assert not await _connects(broker, None, None)  # anonymous
    # A new password is taken at once by the running broker (set_password reloads it); the old one is refused.
    broker.broker.set_password(mqtt_username(device_id), "rotated-password-000000")
    assert not await _connects(broker, mqtt_username(device_id), password)
    assert await _connects(broker, mqtt_username(device_id), "rotated-password-000000")
    assert broker.broker.remove_account(mqtt_username(device_id))
    assert not await _connects(broker, mqtt_username(device_id), "rotated-password-000000")


async def test_a_device_publishes_and_reads_only_under_its_own_id(broker: TestBroker) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()

    async def collect(message: MqttMessage, _publish: Publish) -> None:
        await got.put(message.topic)

    client = broker.platform_client()
    client.subscribe(device_filter(ALARM), collect)
    first_id, first_password = broker.new_device()
    second_id, _ = broker.new_device()
    async with running(client), broker.device_client(first_id, first_password) as device:
        # Into the other device's topic: the broker takes it (PUBACK) and delivers it to nobody.
        await device.publish(device_topic(second_id, ALARM), b'{"message_id": "spoof"}', qos=1)
        await device.publish(device_topic(first_id, ALARM), b'{"message_id": "own"}', qos=1)
        # Same connection, same order: had the first got through, it would be first here.
        assert await asyncio.wait_for(got.get(), 5) == device_topic(first_id, ALARM)
        assert got.empty()
        # It may not read another device's acknowledgements. (Mosquitto grants any subscription and checks the
        # ACL as it delivers.) Sent first, another device's would arrive first.
        for topic_filter in (ack_topic(second_id), "cc/devices/#", ack_topic(first_id)):
            await device.subscribe(topic_filter, qos=1)
        await client.publish(ack_topic(second_id), json.dumps({"status": "stored", "for": "second"}).encode())
        await client.publish(ack_topic(first_id), json.dumps({"status": "stored", "for": "first"}).encode())
        ack = await asyncio.wait_for(anext(aiter(device.messages)), 5)
        assert (ack.topic.value, json.loads(ack.payload)["for"]) == (ack_topic(first_id), "first")


def test_start_refuses_a_port_another_process_holds(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = MosquittoBroker(tmp_path, HostPort("127.0.0.1", taken.getsockname()[1]), "callcenter")
        broker.render("platform-password", "telemetry-password")
        with pytest.raises(MosquittoError, match="already taken"):
            broker.start()


def test_a_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path, HostPort("127.0.0.1", free_tcp_port()), "callcenter")
    broker.render("platform-password", "telemetry-password")
    broker.pid_file.write_text(f"{os.getpid()}\n")  # a live process, but not this broker
    assert broker.pid() is None
    assert not broker.stop() and not broker.reload()
    pid = broker.start()
    try:
        assert broker.pid() == pid and broker.reload()
    finally:
        assert broker.stop()
    assert broker.pid() is None
