"""Devices on MQTT for the benchmarks: their accounts on the stack's own Mosquitto, a process of reading publishers
(real MQTT clients over 127.0.0.1, QoS 1, each waiting for the platform's ``stored`` answer as the device protocol
says) and an alarm sender that stamps each alarm's publish time.

The publishers run in a process of their own (``ReadingPublishers``), so their CPU is not the benchmark's and their
clock is the machine's (``time.time()``): one machine, one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import multiprocessing
import multiprocessing.connection
import random
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from sqlalchemy import select

from callcenter.db.session import Database
from callcenter.devices.models import Device
from callcenter.mosquitto.broker import MosquittoBroker
from callcenter.telephony.device_topics import ALARM, READING, ack_topic, device_topic, mqtt_username

CONNECT_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class MqttDevice:
    device_id: int
    username: str
    password: str


async def device_ids(db: Database) -> list[int]:
    async with db.transaction() as session:
        return list(await session.scalars(select(Device.id).order_by(Device.id)))


def provision(broker: MosquittoBroker, ids: Sequence[int]) -> list[MqttDevice]:
    """Each device an MQTT account on the stack's broker, as provisioning gives one (``set_password``)."""
    password = secrets.token_urlsafe(16)  # one for all: the broker hashes each account's with its own salt
    devices = [MqttDevice(i, mqtt_username(i), password) for i in ids]
    for device in devices:
        broker.set_password(device.username, device.password)
    return devices


def reading_payload(message_id: str, rng: random.Random) -> bytes:
    """A blood-pressure reading measured now, within the default limits and the elder's target (every one is still
    judged against both: an alarm or a trend's work order is another path, timed by the alarm run)."""
    systolic = rng.randint(105, 135)
    return json.dumps({"message_id": message_id, "type": "blood_pressure",
                       "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                       "values": {"systolic_mmhg": systolic, "diastolic_mmhg": systolic - rng.randint(45, 50),
                                  "pulse_bpm": rng.randint(60, 90)}}).encode()


# -- reading publishers (a process) ---------------------------------------------------------------------------------

@dataclasses.dataclass
class PublisherStats:
    offered_rate: float = 0.0
    published: int = 0
    stored: int = 0  # answered "stored" by the platform
    rejected: int = 0
    connect_errors: list[str] = dataclasses.field(default_factory=list)
    first_publish: float = 0.0  # time.time()
    last_stored: float = 0.0
    ack_ms: list[float] = dataclasses.field(default_factory=list)  # publish → the platform's "stored" answer

    @property
    def stored_rate(self) -> float:
        span = self.last_stored - self.first_publish
        return self.stored / span if self.stored and span > 0 else 0.0


class ReadingPublishers:
    """``with ReadingPublishers(port, devices, rate, seconds) as pub: ...; pub.stats`` — ``rate`` readings a second
    spread over ``devices`` for ``seconds``, each device with at most ``window`` readings unanswered (a device keeps
    what it sent until the platform answers; a platform that falls behind slows them down, and that shows as a
    stored rate below the offered one). ``wait()`` blocks until they are done (bounded)."""

    def __init__(self, port: int, devices: Sequence[MqttDevice], rate: float, seconds: float, *, window: int = 20,
                 tag: str = "r") -> None:
        self.args = (port, list(devices), rate, seconds, window, f"{tag}{int(time.time())}")
        self.seconds = seconds
        self.stats = PublisherStats(offered_rate=rate)
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: multiprocessing.Process | None = None

    def __enter__(self) -> ReadingPublishers:
        parent, child = multiprocessing.Pipe()
        self._conn = parent
        self._process = multiprocessing.get_context("spawn").Process(target=_child, args=(child, *self.args),
                                                                     daemon=True)
        self._process.start()
        child.close()
        if not parent.poll(CONNECT_TIMEOUT + 10) or parent.recv() != "connected":
            raise RuntimeError("the reading publishers did not connect")
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> PublisherStats:
        """Stop publishing now (a background ingest whose end the caller decides); the figures so far."""
        assert self._conn is not None
        self._conn.send("stop")
        return self.wait(timeout=60.0)

    def wait(self, timeout: float | None = None) -> PublisherStats:
        """The publishers' figures once they are done: after ``seconds`` and the last answers (bounded)."""
        assert self._conn is not None
        if self._conn.poll(timeout if timeout is not None else self.seconds + 60):
            self.stats = self._conn.recv()
        return self.stats

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
            self._process = None


def _child(conn: multiprocessing.connection.Connection, port: int, devices: list[MqttDevice], rate: float,
           seconds: float, window: int, tag: str) -> None:
    conn.send(asyncio.run(_publish(conn, port, devices, rate, seconds, window, tag)))


async def _publish(conn: multiprocessing.connection.Connection, port: int, devices: list[MqttDevice], rate: float,
                   seconds: float, window: int, tag: str) -> PublisherStats:
    stats = PublisherStats(offered_rate=rate)
    sent_at: dict[str, float] = {}
    rng = random.Random(7)  # noqa: S311 -- synthetic values, the same every run
    drained = asyncio.Event()
    publishing = True
    stopped = asyncio.Event()

    def on_parent() -> None:
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        asyncio.get_running_loop().remove_reader(conn.fileno())
        stopped.set()

    stack = contextlib.AsyncExitStack()
    clients: list[tuple[MqttDevice, aiomqtt.Client, asyncio.Semaphore]] = []
    async with stack:
        for device in devices:
            client = aiomqtt.Client("127.0.0.1", port, username=device.username, password=device.password,
                                    identifier=device.username, timeout=CONNECT_TIMEOUT, max_queued_outgoing_messages=0)
            try:
                await stack.enter_async_context(client)
                await client.subscribe(ack_topic(device.device_id), qos=1)
            except aiomqtt.MqttError as error:
                stats.connect_errors.append(f"{device.username}: {error}")
                continue
            clients.append((device, client, asyncio.Semaphore(window)))
        conn.send("connected")
        asyncio.get_running_loop().add_reader(conn.fileno(), on_parent)
        if not clients:
            return stats

        async def answers(client: aiomqtt.Client, gate: asyncio.Semaphore) -> None:
            async for message in client.messages:
                answer = json.loads(message.payload)  # type: ignore[arg-type]
                at = time.time()
                started = sent_at.pop(answer.get("message_id"), None)
                if started is None:
                    continue
                gate.release()
                if not publishing and not sent_at:
                    drained.set()
                if answer.get("status") == "stored":
                    stats.stored += 1
                    stats.last_stored = at
                    stats.ack_ms.append((at - started) * 1000)
                else:
                    stats.rejected += 1

        in_flight: set[asyncio.Task[None]] = set()
        readers = [asyncio.create_task(answers(client, gate)) for _, client, gate in clients]
        total = int(rate * seconds)
        stats.first_publish = time.time()
        start = time.monotonic()
        for n, (device, client, gate) in zip(range(total), itertools.cycle(clients), strict=False):
            due = start + n / rate
            if (lag := due - time.monotonic()) > 0:
                await asyncio.sleep(lag)
            try:  # a device whose window is full waits for an answer, but not past the run's end
                await asyncio.wait_for(gate.acquire(), max(0.0, start + seconds - time.monotonic()) + 0.001)
            except TimeoutError:
                break
            if stopped.is_set() or time.monotonic() - start > seconds:
                gate.release()
                break
            message_id = f"{tag}-{device.device_id}-{n}"
            sent_at[message_id] = time.time()
            # Not awaited here: the broker's PUBACK is not the platform's answer, and the next device need not
            # wait for it (the window bounds what is in flight).
            sending = asyncio.create_task(client.publish(device_topic(device.device_id, READING),
                                                         reading_payload(message_id, rng), qos=1))
            in_flight.add(sending)
            sending.add_done_callback(in_flight.discard)
            stats.published += 1
        publishing = False
        if sent_at:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), 30)  # the last answers, bounded
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return stats


# -- alarms (in the benchmark's own process) ------------------------------------------------------------------------

class AlarmSender:
    """One device's MQTT connection (paho, its own network thread) publishing alarms at QoS 1; ``send`` returns
    the ``time.time()`` just before the PUBLISH left, the start of the alarm's clock."""

    def __init__(self, port: int, device: MqttDevice) -> None:
        self.device = device
        self.answers: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=device.username)
        self.client.username_pw_set(device.username, device.password)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe(ack_topic(device.device_id), qos=1)

    def _on_message(self, _client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        answer = json.loads(message.payload)
        with self._answered:
            self.answers[str(answer.get("message_id"))] = answer
            self._answered.notify_all()

    def send(self, message_id: str, alarm_type: str = "fall") -> float:
        payload = json.dumps({"message_id": message_id, "type": alarm_type, "severity": "critical",
                              "occurred_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")}).encode()
        at = time.time()
        self.client.publish(device_topic(self.device.device_id, ALARM), payload, qos=1)
        return at

    def answer(self, message_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self._answered:
            while message_id not in self.answers and (left := deadline - time.monotonic()) > 0:
                self._answered.wait(left)
            return self.answers.get(message_id)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
