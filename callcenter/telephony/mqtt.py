"""The platform's single MQTT connection: devices' alarms, positions, readings and heartbeats come in on it, and the
platform's acknowledgements go out on it (topics and payloads: docs/device-protocol.md).

aiomqtt (over paho-mqtt) speaks the protocol; this module owns what the platform needs around it:

* one connection for the process, opened at start and opened again after every loss with a backoff (0.5 s doubling
  to 5 s, back to 0.5 s once connected), until stop;
* a persistent session (a fixed client id, clean session off): what devices publish while the platform is away
  waits in the broker (QoS 1) and arrives on the next connection;
* subscriptions declared before start, one handler per topic filter, each fed in arrival order from its own bounded
  queue by a task of its own, so a slow handler delays only its own topics; a queue that is full drops the message,
  counted and logged (the device repeats what it sees no acknowledgement for). A batch handler gets, at each turn,
  everything its queue holds (up to its ``max_batch``): what arrived while it worked on the last batch, so a busy
  intake takes many messages in one transaction and an idle one still answers each at once;
* a size bound: a payload over ``max_payload`` is refused before any handler sees it, counted, logged with its
  topic and size (never its content) and passed to the subscription's ``on_refused``;
* ``publish`` at QoS 1, which returns once the broker has the message (PUBACK), fails at once when not connected
  (``MqttNotConnected``: nothing was sent) and fails when the connection drops first or the broker does not answer
  in time (``MqttPublishFailed``: the outcome is unknown). It is never re-sent by the transport;
* a state for /healthz: connected, disconnected (with why) or off (not configured, with why).

Delivery: the transport acknowledges a message to the broker (PUBACK) as soon as it is read off the socket, so a
message is the platform's only once a handler has stored it and published the application's acknowledgement; a
device repeats a message until it sees that, and its message id makes a repetition harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import enum
from collections.abc import Awaitable, Callable

import aiomqtt

from callcenter.logs import get_logger

log = get_logger(__name__)

QOS_AT_LEAST_ONCE = 1
MAX_INFLIGHT = 500  # QoS 1 publishes awaiting their PUBACK at once


class MqttState(enum.StrEnum):
    OFF = "off"  # not configured (or no broker installed): nothing is attempted
    CONNECTED = "connected"  # connected and subscribed
    DISCONNECTED = "disconnected"  # configured, not connected now (connecting, or waiting to try again)


class MqttError(RuntimeError):
    pass


class MqttNotConnected(MqttError):
    """No connection to the broker right now (or MQTT is off): nothing was sent."""


class MqttPublishFailed(MqttError):
    """The message was handed to the connection, but the broker did not confirm it (the connection dropped, or no
    PUBACK in time): it may or may not have arrived, and it is not re-sent."""


@dataclasses.dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """A broker and the platform's account on it."""

    host: str
    port: int
    username: str
    password: str | None = dataclasses.field(default=None, repr=False)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclasses.dataclass(frozen=True, slots=True)
class MqttMessage:
    """A message as a handler gets it."""

    topic: str
    payload: bytes
    received_at: dt.datetime  # UTC, when the platform read it off the socket
    retain: bool = False

    @property
    def levels(self) -> list[str]:
        """The topic's levels: ``cc/devices/17/alarm`` → ``["cc", "devices", "17", "alarm"]``."""
        return self.topic.split("/")


@dataclasses.dataclass(frozen=True, slots=True)
class MqttRefusal:
    """A message the transport refused before any handler saw it."""

    topic: str
    reason: str  # "payload_too_large"
    size: int  # bytes of the payload
    limit: int  # the bound it broke


PAYLOAD_TOO_LARGE = "payload_too_large"

# What a handler uses to answer: publish ``payload`` to ``topic`` at QoS 1 (``MqttClient.publish``).
Publish = Callable[[str, bytes], Awaitable[None]]
MqttHandler = Callable[[MqttMessage, Publish], Awaitable[None]]
MqttBatchHandler = Callable[[list[MqttMessage], Publish], Awaitable[None]]
RefusalHandler = Callable[[MqttRefusal, Publish], Awaitable[None]]


def check_topic_filter(topic_filter: str) -> str:
    """``topic_filter`` if it is a valid MQTT filter ('+' a whole level, '#' only the last level), else ValueError."""
    levels = topic_filter.split("/")
    if not topic_filter or len(topic_filter) > 65535 or "\0" in topic_filter:
        raise ValueError(f"invalid MQTT topic filter {topic_filter!r}")
    for index, level in enumerate(levels):
        if ("+" in level or "#" in level) and len(level) > 1:
            raise ValueError(f"invalid MQTT topic filter {topic_filter!r}: a wildcard must be a whole level")
        if level == "#" and index != len(levels) - 1:
            raise ValueError(f"invalid MQTT topic filter {topic_filter!r}: '#' must be the last level")
    return topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT's matching rule: '+' is one level, '#' this level and every one below (the parent too)."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(wanted) == len(levels)


@dataclasses.dataclass(slots=True)
class MqttCounters:
    """Figures for /healthz; monotonic for the process's life."""

    received: int = 0
    refused_payload_too_large: int = 0
    dropped_queue_full: int = 0
    unrouted: int = 0  # a topic no subscription asked for (a persistent session's old subscription)
    handler_failures: int = 0
    connections: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def shared_filter(share_group: str, topic_filter: str) -> str:
    """The filter to subscribe for ``topic_filter`` shared by ``share_group``'s members (MQTT 5's shared
    subscriptions, which Mosquitto also gives MQTT 3.1.1 clients): the broker gives each message to one of them."""
    if not share_group or any(char in share_group for char in "/+#\0"):
        raise ValueError(f"invalid MQTT share group {share_group!r}: no '/', '+' or '#'")
    return f"$share/{share_group}/{topic_filter}"


class _Subscription:
    def __init__(self, topic_filter: str, handler: MqttHandler | MqttBatchHandler, on_refused: RefusalHandler | None,
                 maxsize: int, *, max_batch: int | None = None, share_group: str | None = None) -> None:
        self.topic_filter = topic_filter
        # What the broker is asked for: the filter itself, or the filter shared by a group.
        self.subscribed_filter = topic_filter if share_group is None else shared_filter(share_group, topic_filter)
        self.handler = handler
        self.on_refused = on_refused
        self.max_batch = max_batch  # None: one message at a time (``handler`` is an MqttHandler)
        self.queue: asyncio.Queue[MqttMessage | MqttRefusal] = asyncio.Queue(maxsize)
        self.task: asyncio.Task[None] | None = None

    async def run(self, publish: Publish, counters: MqttCounters) -> None:
        while True:
            items = [await self.queue.get()]
            while self.max_batch is not None and len(items) < self.max_batch and not self.queue.empty():
                items.append(self.queue.get_nowait())
            messages = [item for item in items if isinstance(item, MqttMessage)]
            for refusal in (item for item in items if isinstance(item, MqttRefusal)):
                await self._call(counters, refusal.topic, self.on_refused, refusal, publish)
            if self.max_batch is not None:
                if messages:
                    await self._call(counters, messages[0].topic, self.handler, messages, publish)
                continue
            for message in messages:
                await self._call(counters, message.topic, self.handler, message, publish)

    async def _call(self, counters: MqttCounters, topic: str, handler: Callable[..., Awaitable[None]] | None,
                    *args: object) -> None:
        if handler is None:
            return
        try:
            await handler(*args)
        except Exception:
            counters.handler_failures += 1
            # The device sees no acknowledgement and repeats the message (a batch: every message of it).
            log.exception("mqtt.handler_failed", topic=topic, topic_filter=self.topic_filter,
                          handler=getattr(handler, "__qualname__", "?"))


class MqttClient:
    """Owns the platform's MQTT connection: connects, subscribes, reconnects, and serves handlers and publishes."""

    def __init__(self, endpoint: MqttEndpoint | None, *, off_reason: str = "", client_id: str | None = None,
                 persistent_session: bool = True, max_payload: int = 16_384, queue_size: int = 10_000,
                 keepalive: int = 15, connect_timeout: float = 5.0, publish_timeout: float = 5.0,
                 reconnect_delay: float = 0.5, max_reconnect_delay: float = 5.0) -> None:
        """``endpoint`` None: MQTT is off, for ``off_reason``. ``client_id`` (default: the username) names the
        persistent session, so it must be the same at every start."""
        if endpoint is None and not off_reason:
            raise ValueError("an MqttClient without an endpoint needs the reason MQTT is off")
        self.endpoint = endpoint
        self.off_reason = off_reason
        self.client_id = client_id or (endpoint.username if endpoint is not None else "")
        self.persistent_session = persistent_session
        self.max_payload = max_payload
        self.queue_size = queue_size
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.counters = MqttCounters()
        self.last_error: str | None = None
        self._last_logged_error: str | None = None
        self.refused_filters: tuple[str, ...] = ()  # filters the broker's SUBACK refused (its ACL)
        self._subscriptions: list[_Subscription] = []
        self._released: list[str] = []  # unsubscribed on every connection: another process handles them now
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        # Done when the current connection goes: one future every publish of the connection races against
        # (a task per publish waiting on an event cost more than the publish at thousands of answers a second).
        self._lost: asyncio.Future[None] | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False

    @classmethod
    def off(cls, reason: str) -> MqttClient:
        return cls(None, off_reason=reason)

    # -- state ------------------------------------------------------------------------------------
    @property
    def state(self) -> MqttState:
        if self.endpoint is None:
            return MqttState.OFF
        return MqttState.CONNECTED if self._connected.is_set() else MqttState.DISCONNECTED

    @property
    def connected(self) -> bool:
        return self.state is MqttState.CONNECTED

    @property
    def label(self) -> str:
        """Where it connects, for logs and /healthz: ``host:port``, or ``off``."""
        return str(self.endpoint) if self.endpoint is not None else "off"

    def describe(self) -> str:
        """One line on the state, for /healthz and the status page (no secret, no personal data)."""
        if self.endpoint is None:
            return f"off: {self.off_reason}"
        if self.connected:
            refused = f"; subscriptions refused by the broker: {', '.join(self.refused_filters)}" \
                if self.refused_filters else ""
            return f"connected to {self.endpoint} as {self.endpoint.username}{refused}"
        why = self.last_error or ("connecting" if self._started else "not started")
        return f"not connected to {self.endpoint}: {why}"

    async def wait_connected(self, timeout: float) -> None:
        if self.endpoint is None:
            raise MqttNotConnected(f"MQTT is off: {self.off_reason}")
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            raise MqttNotConnected(f"no MQTT connection to {self.endpoint} after {timeout:.0f}s: "
                                   f"{self.last_error or 'connecting'}") from None

    # -- subscriptions ----------------------------------------------------------------------------
    def subscribe(self, topic_filter: str, handler: MqttHandler | MqttBatchHandler, *,
                  on_refused: RefusalHandler | None = None, max_batch: int | None = None,
                  share_group: str | None = None) -> None:
        """Deliver messages on ``topic_filter`` to ``handler``, in arrival order, one at a time — or, with
        ``max_batch``, as lists of what is waiting (at most ``max_batch``). ``share_group``: the filter is shared
        with the group's other members (other processes), each message going to one of them. Only before start:
        the filters are subscribed on every connection."""
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if self._started:
            raise RuntimeError("MQTT subscriptions are declared before the client starts")
        check_topic_filter(topic_filter)
        if any(s.topic_filter == topic_filter for s in self._subscriptions) or topic_filter in self._released:
            raise ValueError(f"MQTT topic filter {topic_filter!r} already has a handler")
        self._subscriptions.append(_Subscription(topic_filter, handler, on_refused, self.queue_size,
                                                 max_batch=max_batch, share_group=share_group))

    def release(self, topic_filter: str) -> None:
        """Another process handles ``topic_filter`` now: unsubscribe it on every connection, because this client's
        persistent session may still hold it from a time this process handled it (the broker would go on
        delivering those messages here, where nothing takes them). Only before start."""
        if self._started:
            raise RuntimeError("MQTT subscriptions are declared before the client starts")
        check_topic_filter(topic_filter)
        if any(s.topic_filter == topic_filter for s in self._subscriptions):
            raise ValueError(f"MQTT topic filter {topic_filter!r} has a handler here: it cannot be released")
        if topic_filter not in self._released:
            self._released.append(topic_filter)

    @property
    def topic_filters(self) -> tuple[str, ...]:
        return tuple(s.topic_filter for s in self._subscriptions)

    @property
    def subscribed_filters(self) -> tuple[str, ...]:
        """What the broker is asked for: the filters, a shared one with its ``$share/<group>/`` prefix."""
        return tuple(s.subscribed_filter for s in self._subscriptions)

    @property
    def released_filters(self) -> tuple[str, ...]:
        return tuple(self._released)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._started = True
        if self.endpoint is None:
            log.warning("mqtt.off", reason=self.off_reason)
            return
        for subscription in self._subscriptions:
            subscription.task = asyncio.create_task(subscription.run(self.publish, self.counters))
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(self.endpoint))

    async def stop(self) -> None:
        self._stopping.set()
        tasks = [t for t in [self._task, *(s.task for s in self._subscriptions)] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        for subscription in self._subscriptions:
            subscription.task = None
        self._connected.clear()

    async def _run(self, endpoint: MqttEndpoint) -> None:
        """Connect, subscribe, read; after a loss wait and start again. Ends only when cancelled (stop)."""
        delay = self.reconnect_delay
        while not self._stopping.is_set():
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            try:
                async with self._new_client(endpoint) as client:
                    self._client, self._lost = client, lost
                    await self._subscribe_all(client)
                    self.counters.connections += 1
                    self.last_error = self._last_logged_error = None
                    self._connected.set()
                    delay = self.reconnect_delay
                    log.info("mqtt.connected", broker=str(endpoint), username=endpoint.username,
                             topic_filters=list(self.topic_filters))
                    async for message in client.messages:
                        self._take(message)
            except aiomqtt.MqttError as error:
                self._lose(f"{type(error).__name__}: {error}", endpoint, delay)
            except Exception as error:  # a bug must not end the connection's life: log it and connect again
                log.exception("mqtt.connection_failed", broker=str(endpoint))
                self._lose(f"{type(error).__name__}: {error}", endpoint, delay)
            finally:
                self._client = None
                self._connected.clear()
                if not lost.done():
                    lost.set_result(None)
            # The backoff wait; stop ends it at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(self.max_reconnect_delay, delay * 2)

    def _lose(self, why: str, endpoint: MqttEndpoint, delay: float) -> None:
        self.last_error = why[:300]
        # A broker that stays away is logged when its reason changes, not on every attempt.
        if self._connected.is_set():
            log.warning("mqtt.disconnected", broker=str(endpoint), error=self.last_error, retry_in=delay)
        elif self.last_error != self._last_logged_error:
            log.warning("mqtt.connect_failed", broker=str(endpoint), error=self.last_error, retry_in=delay)
        self._last_logged_error = self.last_error

    def _new_client(self, endpoint: MqttEndpoint) -> aiomqtt.Client:
        client = aiomqtt.Client(
            endpoint.host, endpoint.port, username=endpoint.username, password=endpoint.password,
            identifier=self.client_id, clean_session=not self.persistent_session,
            protocol=aiomqtt.ProtocolVersion.V311, keepalive=self.keepalive, timeout=self.connect_timeout,
            # The reader never waits (it only hands messages to the subscriptions' queues); this bounds memory anyway.
            max_queued_incoming_messages=self.queue_size,
            # A batch's answers go out together: let them be in flight together (paho's default is 20).
            max_inflight_messages=MAX_INFLIGHT,
        )
        # aiomqtt logs a warning for every publish while more than this many are pending; a batch's answers are
        # that many by design, and a log line each would cost more than the answers.
        client.pending_calls_threshold = self.queue_size
        return client

    async def _subscribe_all(self, client: aiomqtt.Client) -> None:
        for topic_filter in self._released:
            await client.unsubscribe(topic_filter)
        refused = []
        for subscription in self._subscriptions:
            codes = await client.subscribe(subscription.subscribed_filter, qos=QOS_AT_LEAST_ONCE)
            if any(getattr(code, "is_failure", code == 0x80) for code in codes):
                refused.append(subscription.subscribed_filter)
        self.refused_filters = tuple(refused)
        if refused:
            log.error("mqtt.subscription_refused", topic_filters=refused,
                      detail="the broker's ACL does not let the platform's account read these topics")

    # -- incoming ---------------------------------------------------------------------------------
    def _take(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else bytes(message.payload or b"")
        self.counters.received += 1
        targets = [s for s in self._subscriptions if topic_matches(s.topic_filter, topic)]
        if not targets:
            self.counters.unrouted += 1
            return
        item: MqttMessage | MqttRefusal
        if len(payload) > self.max_payload:
            self.counters.refused_payload_too_large += 1
            log.warning("mqtt.message_refused", reason=PAYLOAD_TOO_LARGE, topic=topic, size=len(payload),
                        limit=self.max_payload)
            item = MqttRefusal(topic, PAYLOAD_TOO_LARGE, len(payload), self.max_payload)
        else:
            item = MqttMessage(topic, payload, dt.datetime.now(dt.UTC), bool(message.retain))
        for subscription in targets:
            if isinstance(item, MqttRefusal) and subscription.on_refused is None:
                continue
            try:
                subscription.queue.put_nowait(item)
            except asyncio.QueueFull:
                self.counters.dropped_queue_full += 1
                log.warning("mqtt.queue_full", topic=topic, topic_filter=subscription.topic_filter,
                            queued=subscription.queue.qsize())

    # -- outgoing ---------------------------------------------------------------------------------
    async def publish(self, topic: str, payload: bytes, *, qos: int = QOS_AT_LEAST_ONCE) -> None:
        """Publish and wait for the broker to have it (QoS 1: its PUBACK). See the module's notes on failures."""
        client, lost = self._client, self._lost
        if self.endpoint is None:
            raise MqttNotConnected(f"MQTT is off: {self.off_reason}")
        if client is None or lost is None or not self._connected.is_set():
            raise MqttNotConnected(f"not connected to the MQTT broker {self.endpoint}")
        sending = asyncio.ensure_future(client.publish(topic, payload, qos=qos, timeout=self.publish_timeout))
        try:
            done, _ = await asyncio.wait((sending, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sending.done():
                sending.cancel()
        if sending not in done:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await sending
            raise MqttPublishFailed(f"the MQTT connection dropped before the broker confirmed {topic}")
        try:
            sending.result()
        except aiomqtt.MqttError as error:
            raise MqttPublishFailed(f"publishing to {topic} failed: {error}") from None
