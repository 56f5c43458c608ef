"""MqttClient against the real Mosquitto (tests/mqtt.py): connecting, a handler answering a device, the size bound,
reconnecting after the broker is killed, the persistent session, and MQTT off."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal

import pytest
from structlog.testing import capture_logs

from callcenter.telephony.device_topics import (
    ALARM,
    READING,
    ack_topic,
    device_filter,
    device_topic,
    mqtt_username,
    parse_device_topic,
)
from callcenter.telephony.mqtt import (
    PAYLOAD_TOO_LARGE,
    MqttClient,
    MqttMessage,
    MqttNotConnected,
    MqttPublishFailed,
    MqttRefusal,
    MqttState,
    Publish,
    check_topic_filter,
    topic_matches,
)
from tests.mqtt import TestBroker, eventually, running

pytestmark = pytest.mark.timeout(30)


class Inbox:
    """A handler that keeps what it gets and acknowledges each message on the device's ack topic, as the alarms
    domain does once a message is stored."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[MqttMessage] = asyncio.Queue()
        self.refusals: asyncio.Queue[MqttRefusal] = asyncio.Queue()

    async def handle(self, message: MqttMessage, publish: Publish) -> None:
        parsed = parse_device_topic(message.topic)
        assert parsed is not None
        body = json.loads(message.payload)
        await publish(ack_topic(parsed[0]), json.dumps({"message_id": body["message_id"], "status": "stored"}).encode())
        await self.messages.put(message)

    async def refused(self, refusal: MqttRefusal, publish: Publish) -> None:
        parsed = parse_device_topic(refusal.topic)
        assert parsed is not None
        await publish(ack_topic(parsed[0]), json.dumps({"status": "rejected", "reason": refusal.reason}).encode())
        await self.refusals.put(refusal)

    async def next(self, timeout: float = 5.0) -> MqttMessage:
        return await asyncio.wait_for(self.messages.get(), timeout)


def alarm(message_id: str, **extra: object) -> bytes:
    return json.dumps({"message_id": message_id, "type": "fall", "occurred_at": "2026-03-01T08:00:00+08:00",
                       **extra}).encode()


async def test_a_handler_gets_a_device_alarm_and_the_device_its_acknowledgement(broker: TestBroker) -> None:
    inbox = Inbox()
    client = broker.platform_client()
    client.subscribe(device_filter(ALARM), inbox.handle)
    device_id, password = broker.new_device()
    async with running(client), broker.device_client(device_id, password) as device:
        assert client.state is MqttState.CONNECTED
        assert client.describe() == f"connected to 127.0.0.1:{broker.port} as callcenter"
        await device.subscribe(ack_topic(device_id), qos=1)
        await device.publish(device_topic(device_id, ALARM), alarm("m-1"), qos=1)
        received = await inbox.next()
        assert (received.topic, json.loads(received.payload)["message_id"]) == (device_topic(device_id, ALARM), "m-1")
        assert received.received_at.tzinfo is not None and received.levels[2] == str(device_id)
        ack = await asyncio.wait_for(anext(aiter(device.messages)), 5)
        assert json.loads(ack.payload) == {"message_id": "m-1", "status": "stored"}
    assert client.counters.received == 1 and client.counters.connections == 1


async def test_an_oversized_payload_is_refused_unread_counted_and_answered(broker: TestBroker) -> None:
    inbox = Inbox()
    client = broker.platform_client(max_payload=300)
    client.subscribe(device_filter(ALARM), inbox.handle, on_refused=inbox.refused)
    device_id, password = broker.new_device()
    secret = "沉重的秘密"  # stands for whatever a payload holds: it must not reach the log
    async with running(client), broker.device_client(device_id, password) as device:
        await device.subscribe(ack_topic(device_id), qos=1)
        with capture_logs() as logs:
            await device.publish(device_topic(device_id, ALARM), alarm("m-big", note=secret * 40), qos=1)
            await device.publish(device_topic(device_id, ALARM), alarm("m-small"), qos=1)
            assert json.loads((await inbox.next()).payload)["message_id"] == "m-small"
        refusal = inbox.refusals.get_nowait()
        assert (refusal.reason, refusal.limit, refusal.size > 300) == (PAYLOAD_TOO_LARGE, 300, True)
        assert inbox.messages.empty()
        assert client.counters.refused_payload_too_large == 1
        refused = [entry for entry in logs if entry["event"] == "mqtt.message_refused"]
        assert refused == [{"event": "mqtt.message_refused", "log_level": "warning", "reason": PAYLOAD_TOO_LARGE,
                            "topic": device_topic(device_id, ALARM), "size": refusal.size, "limit": 300}]
        assert secret not in str(logs)
        answers = [json.loads((await asyncio.wait_for(anext(aiter(device.messages)), 5)).payload) for _ in range(2)]
        assert answers == [{"status": "rejected", "reason": PAYLOAD_TOO_LARGE},
                           {"message_id": "m-small", "status": "stored"}]


async def test_it_reconnects_after_the_broker_is_killed_and_restarted(broker: TestBroker) -> None:
    inbox = Inbox()
    client = broker.platform_client()
    client.subscribe(device_filter(ALARM), inbox.handle)
    device_id, password = broker.new_device()
    async with running(client):
        broker.kill()
        await eventually(lambda: client.state is MqttState.DISCONNECTED, what="the loss to be seen")
        assert client.describe().startswith(f"not connected to 127.0.0.1:{broker.port}: ")
        with pytest.raises(MqttNotConnected):
            await client.publish(ack_topic(device_id), b"{}")
        broker.ensure_running()
        await client.wait_connected(5)
        assert client.counters.connections == 2
        # Subscribed again on the new connection: a device's alarm gets through.
        async with broker.device_client(device_id, password) as device:
            await device.publish(device_topic(device_id, ALARM), alarm("after-restart"), qos=1)
            assert json.loads((await inbox.next()).payload)["message_id"] == "after-restart"


async def test_what_devices_send_while_the_platform_is_away_arrives_when_it_is_back(broker: TestBroker) -> None:
    device_id, password = broker.new_device()
    first = broker.platform_client(persistent=True)
    first.subscribe(device_filter(ALARM), Inbox().handle)
    async with running(first):
        pass  # the broker now holds the platform's session and its subscription
    async with broker.device_client(device_id, password) as device:
        await device.publish(device_topic(device_id, ALARM), alarm("while-away"), qos=1)
    inbox = Inbox()
    second = broker.platform_client(persistent=True)
    second.subscribe(device_filter(ALARM), inbox.handle)
    async with running(second):
        assert json.loads((await inbox.next()).payload)["message_id"] == "while-away"
    # Leave no session behind for the next tests: a clean connection drops it.
    async with running(broker.platform_client()):
        pass


async def test_a_failing_handler_is_counted_and_the_next_message_still_handled(broker: TestBroker) -> None:
    handled: asyncio.Queue[str] = asyncio.Queue()

    async def fragile(message: MqttMessage, _publish: Publish) -> None:
        message_id = json.loads(message.payload)["message_id"]
        if message_id == "boom":
            raise ValueError("a bug in the handler")
        await handled.put(message_id)

    client = broker.platform_client()
    client.subscribe(device_filter(ALARM), fragile)
    device_id, password = broker.new_device()
    async with running(client), broker.device_client(device_id, password) as device:
        with capture_logs() as logs:
            await device.publish(device_topic(device_id, ALARM), alarm("boom"), qos=1)
            await device.publish(device_topic(device_id, ALARM), alarm("fine"), qos=1)
            assert await asyncio.wait_for(handled.get(), 5) == "fine"
    assert client.counters.handler_failures == 1
    assert [entry["topic"] for entry in logs if entry["event"] == "mqtt.handler_failed"] == [
        device_topic(device_id, ALARM)]


async def test_a_refused_login_leaves_it_disconnected_saying_why(broker: TestBroker) -> None:
    client = MqttClient(broker.platform_endpoint(password="wrong-password"), persistent_session=False,
                        reconnect_delay=0.1, max_reconnect_delay=0.2)
    with capture_logs() as logs:
        await client.start()
        try:
            await eventually(lambda: client.last_error is not None, what="the refusal")
            assert client.state is MqttState.DISCONNECTED
            assert "authori" in client.describe().lower(), client.describe()
            with pytest.raises(MqttNotConnected):
                await client.wait_connected(0.3)
        finally:
            await client.stop()
    # Logged when the reason changes, not at every attempt.
    assert len([entry for entry in logs if entry["event"] == "mqtt.connect_failed"]) == 1
    assert "wrong-password" not in str(logs)


async def test_mqtt_off_attempts_nothing_and_says_why() -> None:
    client = MqttClient.off("CC_MQTT_URL=off")
    client.subscribe(device_filter(ALARM), Inbox().handle)  # plugins declare their topics all the same
    with capture_logs() as logs:
        await client.start()
    assert (client.state, client.label, client.describe()) == (MqttState.OFF, "off", "off: CC_MQTT_URL=off")
    assert logs == [{"event": "mqtt.off", "log_level": "warning", "reason": "CC_MQTT_URL=off"}]
    with pytest.raises(MqttNotConnected, match="off"):
        await client.publish("cc/devices/1/ack", b"{}")
    with pytest.raises(MqttNotConnected, match="off"):
        await client.wait_connected(0.1)
    await client.stop()


async def test_subscriptions_are_declared_once_each_and_before_start(broker: TestBroker) -> None:
    client = broker.platform_client()
    client.subscribe(device_filter(ALARM), Inbox().handle)
    with pytest.raises(ValueError, match="already has a handler"):
        client.subscribe(device_filter(ALARM), Inbox().handle)
    with pytest.raises(ValueError, match="whole level"):
        client.subscribe("cc/devices/dev+/alarm", Inbox().handle)
    async with running(client):
        with pytest.raises(RuntimeError, match="before the client starts"):
            client.subscribe("cc/devices/+/reading", Inbox().handle)


def test_topic_filters_match_as_mqtt_says() -> None:
    assert topic_matches("cc/devices/+/alarm", "cc/devices/17/alarm")
    assert not topic_matches("cc/devices/+/alarm", "cc/devices/17/alarm/x")
    assert not topic_matches("cc/devices/+/alarm", "cc/devices/17/reading")
    assert topic_matches("cc/devices/#", "cc/devices/17/alarm")
    assert topic_matches("cc/devices/#", "cc/devices")
    assert not topic_matches("cc/devices/17", "cc/devices/17/alarm")
    for bad in ("", "cc/#/alarm", "cc/dev#", "cc/+x/alarm"):
        with pytest.raises(ValueError):
            check_topic_filter(bad)


def test_the_device_topic_layout() -> None:
    assert device_filter("alarm") == "cc/devices/+/alarm"
    assert (device_topic(17, "reading"), ack_topic(17), mqtt_username(17)) == (
        "cc/devices/17/reading", "cc/devices/17/ack", "17")
    assert parse_device_topic("cc/devices/17/alarm") == (17, "alarm")
    for foreign in ("cc/devices/017/alarm", "cc/devices/x/alarm", "cc/devices/17/unknown", "cc/other/17/alarm",
                    "cc/devices/17/alarm/extra", "cc/devices//alarm"):
        assert parse_device_topic(foreign) is None, foreign
    with pytest.raises(ValueError):
        device_filter("ack")


async def test_a_publish_the_broker_does_not_confirm_fails_and_is_not_resent(broker: TestBroker) -> None:
    client = broker.platform_client(publish_timeout=0.3)
    async with running(client):
        pid = broker.broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # a broker that hangs: the connection stays, no PUBACK comes
        try:
            with pytest.raises(MqttPublishFailed, match="failed"):
                await client.publish(ack_topic(1), b"{}")
            # The connection drops while a publish waits for its PUBACK: it fails then, not at its timeout.
            client.publish_timeout = 30
            waiting = asyncio.ensure_future(client.publish(ack_topic(1), b"{}"))
            await asyncio.sleep(0)  # one turn of the loop: the publish is on the wire, waiting for its PUBACK
            assert not waiting.done()
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(MqttPublishFailed, match="dropped"):
                await asyncio.wait_for(waiting, 5)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def test_a_batch_handler_gets_what_arrived_while_it_worked_in_order_and_within_its_bound(
        broker: TestBroker) -> None:
    first_taken, release = asyncio.Event(), asyncio.Event()
    batches: asyncio.Queue[list[str]] = asyncio.Queue()

    async def intake(messages: list[MqttMessage], _publish: Publish) -> None:
        await batches.put([json.loads(message.payload)["message_id"] for message in messages])
        if not first_taken.is_set():
            first_taken.set()
            await release.wait()  # a slow transaction: what comes meanwhile waits in the queue

    client = broker.platform_client()
    client.subscribe(device_filter(READING), intake, max_batch=4)
    device_id, password = broker.new_device()
    async with running(client), broker.device_client(device_id, password) as device:
        await device.publish(device_topic(device_id, READING), alarm("r-0"), qos=1)
        await asyncio.wait_for(first_taken.wait(), 5)
        for number in range(1, 7):
            await device.publish(device_topic(device_id, READING), alarm(f"r-{number}"), qos=1)
        await eventually(lambda: client.counters.received == 7)
        release.set()
        taken = [await asyncio.wait_for(batches.get(), 5) for _ in range(3)]
    # One alone (nothing was waiting), then the six that came meanwhile: four (the bound), then the other two.
    assert taken == [["r-0"], ["r-1", "r-2", "r-3", "r-4"], ["r-5", "r-6"]]


async def test_a_failing_batch_handler_is_counted_and_the_next_batch_still_handled(broker: TestBroker) -> None:
    handled: asyncio.Queue[list[str]] = asyncio.Queue()

    async def fragile(messages: list[MqttMessage], _publish: Publish) -> None:
        message_ids = [json.loads(message.payload)["message_id"] for message in messages]
        if "boom" in message_ids:
            raise ValueError("a bug in the handler")
        await handled.put(message_ids)

    client = broker.platform_client()
    client.subscribe(device_filter(READING), fragile, max_batch=10)
    device_id, password = broker.new_device()
    async with running(client), broker.device_client(device_id, password) as device:
        await device.publish(device_topic(device_id, READING), alarm("boom"), qos=1)
        await eventually(lambda: client.counters.handler_failures == 1)
        await device.publish(device_topic(device_id, READING), alarm("fine"), qos=1)
        assert await asyncio.wait_for(handled.get(), 5) == ["fine"]
    with pytest.raises(ValueError, match="max_batch"):
        broker.platform_client().subscribe(device_filter(READING), fragile, max_batch=0)


async def test_a_shared_subscription_gives_each_message_to_one_member_of_the_group(broker: TestBroker) -> None:
    """Two processes in one share group (the telemetry process's way): every reading reaches exactly one of them,
    each answered, and a plain filter's matching still routes the shared one's messages to its handler."""
    device_id, password = broker.new_device()
    inboxes = [Inbox(), Inbox()]
    members = [broker.platform_client(client_id=f"callcenter-share-{index}") for index in range(2)]
    for member, inbox in zip(members, inboxes, strict=True):
        member.subscribe(device_filter(READING), inbox.handle, share_group="telemetry")
    # The broker names each connection by its username: the second member is the telemetry account.
    members[1].endpoint = broker.telemetry_endpoint()
    async with running(members[0]), running(members[1]), broker.device_client(device_id, password) as device:
        await device.subscribe(ack_topic(device_id), qos=1)
        sent = [f"r-{index}" for index in range(20)]
        for message_id in sent:
            await device.publish(device_topic(device_id, READING), alarm(message_id), qos=1)
        answered = set()
        async with asyncio.timeout(10):
            async for message in device.messages:
                answered.add(json.loads(message.payload)["message_id"])
                if len(answered) == len(sent):
                    break
        # A handler keeps a message once its answer is confirmed, which may be just after the device has it.
        await eventually(lambda: sum(inbox.messages.qsize() for inbox in inboxes) == len(sent), what="handlers")
        taken = [[json.loads(m.payload)["message_id"] for m in _drain(inbox.messages)] for inbox in inboxes]
    assert sorted(taken[0] + taken[1]) == sorted(sent) and answered == set(sent)
    assert taken[0] and taken[1]  # shared, not copied: each took some
    assert members[0].counters.unrouted == members[1].counters.unrouted == 0
    with pytest.raises(ValueError, match="share group"):
        broker.platform_client().subscribe(device_filter(ALARM), Inbox().handle, share_group="a/b")


async def test_a_released_filter_is_unsubscribed_from_the_persistent_session(broker: TestBroker) -> None:
    """A process that handled readings and now leaves them to another: its persistent session still holds the
    subscription, which ``release`` drops, so the broker stops queueing readings for it."""
    device_id, password = broker.new_device()
    before = broker.platform_client(persistent=True)
    before.subscribe(device_filter(READING), Inbox().handle)
    async with running(before):
        pass  # the session now holds the readings' subscription
    after = broker.platform_client(persistent=True)
    after.release(device_filter(READING))
    inbox = Inbox()
    after.subscribe(device_filter(ALARM), inbox.handle)
    with pytest.raises(ValueError, match="already has a handler"):
        after.subscribe(device_filter(READING), Inbox().handle)
    async with running(after), broker.device_client(device_id, password) as device:
        await device.publish(device_topic(device_id, READING), alarm("reading-elsewhere"), qos=1)
        await device.publish(device_topic(device_id, ALARM), alarm("alarm-here"), qos=1)
        assert json.loads((await inbox.next()).payload)["message_id"] == "alarm-here"
        assert after.counters.unrouted == 0  # the reading was not delivered here at all
    async with running(broker.platform_client()):
        pass  # no session left behind


def _drain(queue: asyncio.Queue[MqttMessage]) -> list[MqttMessage]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
