"""The real Mosquitto for tests: a broker of the tests' own on a free loopback port, rendered and started exactly as
``callcenter mqtt start`` does the platform's (``mosquitto.broker.MosquittoBroker``), shared by a test session.

A missing ``mosquitto`` is an error, never a skip: ``make test`` installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt

from callcenter.config import HostPort
from callcenter.mosquitto.broker import MosquittoBroker, mosquitto_binary
from callcenter.telephony.device_topics import mqtt_username
from callcenter.telephony.mqtt import MqttClient, MqttEndpoint

PLATFORM_USERNAME = "callcenter"
# Device ids of one test session: each test takes fresh ones, so no test sees another's accounts or messages.
_device_ids = itertools.count(700_000 + (os.getpid() % 1000) * 100)


def require_mosquitto() -> None:
    if mosquitto_binary() is None:
        raise RuntimeError("mosquitto is not installed (Debian package mosquitto): run `make test`, which installs it")


@dataclasses.dataclass
class TestBroker:
    broker: MosquittoBroker
    platform_password: str
    telemetry_password: str

    __test__ = False  # not a test class, whatever its name says

    @classmethod
    def start(cls, directory: Path, port: int) -> TestBroker:
        require_mosquitto()
        broker = MosquittoBroker(directory, HostPort("127.0.0.1", port), PLATFORM_USERNAME)
        password, telemetry_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        broker.render(password, telemetry_password)
        broker.start()
        return cls(broker, password, telemetry_password)

    @property
    def port(self) -> int:
        return self.broker.bind.port

    def platform_endpoint(self, password: str | None = None) -> MqttEndpoint:
        return MqttEndpoint("127.0.0.1", self.port, PLATFORM_USERNAME, password or self.platform_password)

    def telemetry_endpoint(self) -> MqttEndpoint:
        return MqttEndpoint("127.0.0.1", self.port, self.broker.telemetry_username, self.telemetry_password)

    def platform_client(self, *, persistent: bool = False, **options: object) -> MqttClient:
        """The platform's client on this broker. Tests start clean (a persistent session would hand them the
        messages an earlier test left queued) unless they test the persistent session itself."""
        return MqttClient(self.platform_endpoint(), persistent_session=persistent, reconnect_delay=0.1,
                          max_reconnect_delay=0.5, **options)  # type: ignore[arg-type]

    def new_device(self) -> tuple[int, str]:
        """A device account of its own: (device id, password)."""
        device_id, password = next(_device_ids), secrets.token_urlsafe(18)
        self.broker.set_password(mqtt_username(device_id), password)
        return device_id, password

    def device_client(self, device_id: int, password: str, **options: object) -> aiomqtt.Client:
        """A device as its firmware would connect: its id as username (and so as client id)."""
        return aiomqtt.Client("127.0.0.1", self.port, username=mqtt_username(device_id), password=password,
                              timeout=5, **options)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing saved, every connection cut."""
        pid = self.broker.pid()
        assert pid is not None, "the test broker is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.broker.pid() is not None:
            assert time.monotonic() < deadline, "the killed broker is still there"
            time.sleep(0.01)

    def ensure_running(self) -> None:
        if self.broker.pid() is None:
            self.broker.start()

    def stop(self) -> None:
        self.broker.stop()


async def eventually(condition: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition") -> None:
    """Wait until ``condition()`` holds (it reads state another task changes); fail naming ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(client: MqttClient, timeout: float = 5.0) -> AsyncIterator[MqttClient]:
    """``client`` started and connected for the block, stopped after it."""
    await client.start()
    try:
        await client.wait_connected(timeout)
        yield client
    finally:
        await client.stop()
