"""AmiClient against a scripted AMI peer that behaves like Asterisk's manager interface."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from panoramisk.message import Message
from structlog.testing import capture_logs

from callcenter.telephony.ami import (
    AmiActionFailed,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
    AmiTimeout,
)

TEST_TIMEOUT = 5.0  # every test body runs under this; a regression fails instead of hanging

# asyncio timeouts cannot fire while the event loop spins without awaiting (the panoramisk FastAGI bug);
# pytest-timeout's SIGALRM still interrupts it, so a frozen loop fails the test too.
pytestmark = pytest.mark.timeout(15)
RECONNECT = 3.0  # panoramisk waits int(reconnect_delay) = 1 s before reconnecting; allow for it
USERNAME = "callcenter"
SECRET = "s3cret"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"

Reply = Callable[[dict[str, str]], list[dict[str, str]]]
FULLY_BOOTED = {"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "5", "Status": "Fully Booted"}


def success(**headers: str) -> Reply:
    return lambda action: [{"Response": "Success", "ActionID": action["ActionID"], **headers}]


def error(message: str) -> Reply:
    return lambda action: [{"Response": "Error", "ActionID": action["ActionID"], "Message": message}]


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until ``condition()`` holds, checking every few milliseconds; TimeoutError after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the conditions are plain state owned by other objects
            await asyncio.sleep(0.01)


class FakeAsterisk:
    """A scripted AMI peer.

    Answers Login (Success, or Error and hang up for a wrong secret, as Asterisk does) and Ping (unless
    ``answer_ping`` is off); answers other actions from ``replies`` and ignores the rest. Every action received is
    recorded, with the number of the connection it arrived on.
    """

    def __init__(self) -> None:
        self.answer_ping = True
        self.answer_login = True
        self.booted = True  # False: an Asterisk still loading its modules, which sends FullyBooted only when done
        self.replies: dict[str, Reply] = {}
        self.actions: list[tuple[int, dict[str, str]]] = []
        self.connections = 0
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- what tests look at -----------------------------------------------------------------------------------
    def received(self, name: str) -> list[dict[str, str]]:
        return [action for _, action in self.actions if action.get("Action", "").lower() == name.lower()]

    @property
    def open_connections(self) -> int:
        return len(self._handlers)

    def count(self, name: str) -> int:
        return len(self.received(name))

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 2.0) -> None:
        await eventually(condition, timeout)

    # -- what tests do ----------------------------------------------------------------------------------------
    async def push(self, *messages: dict[str, str]) -> None:
        """Write messages (events, or late responses) to the current connection."""
        assert self._writer is not None
        self._writer.write(b"".join(self._encode(message) for message in messages))
        await self._writer.drain()

    async def drop(self) -> None:
        """Close the current connection, as Asterisk restarting would."""
        assert self._writer is not None
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    # -- the peer ---------------------------------------------------------------------------------------------
    @staticmethod
    def _encode(message: dict[str, str]) -> bytes:
        return "".join(f"{key}: {value}\r\n" for key, value in message.items()).encode() + b"\r\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        number = self.connections
        self._writer = writer
        try:
            writer.write(BANNER)
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                action: dict[str, str] = {}
                for line in raw.decode().split("\r\n"):
                    key, sep, value = line.partition(":")
                    if sep:
                        action[key.strip()] = value.strip()
                self.actions.append((number, action))
                if not await self._answer(action, writer):
                    return
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        """Reply to one action; False to hang up."""
        name = action.get("Action", "").lower()
        replies: list[dict[str, str]] = []
        keep_open = True
        if name == "login" and not self.answer_login:
            return True
        if name == "login":
            if action.get("Username") == USERNAME and action.get("Secret") == SECRET:
                replies = [
                    {"Response": "Success", "ActionID": action["ActionID"], "Message": "Authentication accepted"},
                    *([FULLY_BOOTED] if self.booted else []),
                ]
            else:
                replies = [{"Response": "Error", "ActionID": action["ActionID"], "Message": "Authentication failed"}]
                keep_open = False
        elif name == "ping":
            if self.answer_ping:
                replies = success(Ping="Pong", Timestamp=f"{time.time():.6f}")(action)
        elif (reply := self.replies.get(name)) is not None:
            replies = reply(action)
        writer.write(b"".join(self._encode(message) for message in replies))
        await writer.drain()
        return keep_open


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    peer = FakeAsterisk()
    await peer.start()
    yield peer
    await peer.stop()


ClientFactory = Callable[..., Awaitable[AmiClient]]


@pytest.fixture
async def make_client(asterisk: FakeAsterisk) -> AsyncIterator[ClientFactory]:
    clients: list[AmiClient] = []

    async def make(*, secret: str = SECRET, start: bool = True,
                   setup: Callable[[AmiClient], None] | None = None, **options: Any) -> AmiClient:
        options = {"reconnect_delay": 1, "action_timeout": 2.0, "heartbeat_interval": 30.0, **options}
        client = AmiClient("127.0.0.1", asterisk.port, USERNAME, secret, **options)
        clients.append(client)
        if setup is not None:
            setup(client)
        if start:
            await client.start()
        return client

    yield make
    for client in clients:
        await asyncio.wait_for(client.stop(), TEST_TIMEOUT)


async def connected_client(make_client: ClientFactory, **options: Any) -> AmiClient:
    client = await make_client(**options)
    await client.wait_connected(2.0)
    return client


ORIGINATE = {"Action": "Originate", "Channel": "PJSIP/1001", "Context": "cc-outbound", "Exten": "13800000000",
             "Priority": "1", "Async": "true"}


# -- (a) login ---------------------------------------------------------------------------------------------


async def test_connects_and_logs_in(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await make_client()
        await client.wait_connected(2.0)
    assert client.connected
    [login] = asterisk.received("Login")
    assert (login["Username"], login["Secret"], login["Events"]) == (USERNAME, SECRET, "on")
    assert asterisk.connections == 1


async def test_wrong_secret_never_connects(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        with capture_logs() as logs:
            client = await make_client(secret="wrong")
            await asterisk.wait_until(lambda: asterisk.count("Login") >= 1)
            with pytest.raises(AmiNotConnected):
                await client.wait_connected(0.5)
        assert not client.connected
        with pytest.raises(AmiNotConnected):
            await client.send_action({"Action": "Ping"})
    assert "ami.login_failed" in [entry["event"] for entry in logs]


# -- (g) not connected, failed actions ---------------------------------------------------------------------


async def test_send_action_when_not_connected_raises_at_once(asterisk: FakeAsterisk,
                                                             make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await make_client(start=False)
        started = time.monotonic()
        with pytest.raises(AmiNotConnected):
            await client.send_action(dict(ORIGINATE))
        assert time.monotonic() - started < 0.1
    assert asterisk.count("Originate") == 0


async def test_send_action_to_an_absent_asterisk_raises_at_once(make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        probe = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
        free_port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        client = AmiClient("127.0.0.1", free_port, USERNAME, SECRET, reconnect_delay=1, heartbeat_interval=30)
        await client.start()
        try:
            await asyncio.sleep(0.1)
            with pytest.raises(AmiNotConnected):
                await client.send_action({"Action": "Ping"})
            with pytest.raises(AmiNotConnected):
                await client.wait_connected(0.2)
        finally:
            await client.stop()


async def test_error_response_raises_action_failed(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    asterisk.replies["hangup"] = error("No such channel")
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        with pytest.raises(AmiActionFailed, match="No such channel") as failure:
            await client.send_action({"Action": "Hangup", "Channel": "PJSIP/nobody-00000001"})
        assert failure.value.response["Response"] == "Error"
        unchecked = await client.send_action({"Action": "Hangup", "Channel": "PJSIP/nobody-00000001"}, check=False)
        assert isinstance(unchecked, Message)
        assert unchecked["Message"] == "No such channel"
        assert client.connected


async def test_success_response_is_returned(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    asterisk.replies["getvar"] = success(Variable="CC_ELDER_ID", Value="42")
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        response = await client.send_action({"Action": "Getvar", "Channel": "PJSIP/x", "Variable": "CC_ELDER_ID"})
    assert isinstance(response, Message)
    assert response["Value"] == "42"


async def test_single_answers_that_panoramisk_mistakes_for_lists_complete(asterisk: FakeAsterisk,
                                                                          make_client: ClientFactory) -> None:
    """QueueAdd answers "Added interface to queue", which panoramisk takes for the start of a list."""
    asterisk.replies["queueadd"] = success(Message="Added interface to queue")
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        with pytest.raises(AmiTimeout):
            await client.send_action({"Action": "QueueAdd", "Queue": "q", "Interface": "PJSIP/1"}, timeout=0.3)
        response = await client.send_action({"Action": "QueueAdd", "Queue": "q", "Interface": "PJSIP/1"},
                                            single=True)
    assert isinstance(response, Message)
    assert response["Message"] == "Added interface to queue"


async def test_event_list_response_is_returned_whole(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    def channels(action: dict[str, str]) -> list[dict[str, str]]:
        action_id = action["ActionID"]
        return [
            {"Response": "Success", "ActionID": action_id, "EventList": "start",
             "Message": "Channels will follow"},
            {"Event": "CoreShowChannel", "ActionID": action_id, "Channel": "PJSIP/1001-00000001",
             "Uniqueid": "1700000000.1"},
            {"Event": "CoreShowChannelsComplete", "ActionID": action_id, "EventList": "Complete",
             "ListItems": "1"},
        ]

    asterisk.replies["coreshowchannels"] = channels
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        response = await client.send_action({"Action": "CoreShowChannels"})
    assert isinstance(response, list)
    assert [message.get("Event") for message in response][1:] == ["CoreShowChannel", "CoreShowChannelsComplete"]


# -- (b) timeouts ------------------------------------------------------------------------------------------


async def test_unanswered_action_times_out_and_is_not_resent_after_reconnect(
    asterisk: FakeAsterisk, make_client: ClientFactory
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        started = time.monotonic()
        with pytest.raises(AmiTimeout):
            await client.send_action(dict(ORIGINATE), timeout=0.3)
        assert 0.25 < time.monotonic() - started < 1.0
        assert asterisk.count("Originate") == 1

        await asterisk.drop()
        await asterisk.wait_until(lambda: asterisk.count("Login") == 2, timeout=RECONNECT)
        await client.wait_connected(1.0)
        # Give a re-send (panoramisk sends awaiting actions on FullyBooted) time to show up: it must not.
        await client.send_action({"Action": "Ping"})
        await asyncio.sleep(0.1)
    assert asterisk.count("Originate") == 1


async def test_late_answer_to_a_timed_out_action_is_ignored(asterisk: FakeAsterisk,
                                                            make_client: ClientFactory) -> None:
    asterisk.replies["getvar"] = success(Value="fresh")
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        with pytest.raises(AmiTimeout):
            await client.send_action({"Action": "Originate", "Channel": "PJSIP/1001"}, timeout=0.2)
        [originate] = asterisk.received("Originate")
        await asterisk.push({"Response": "Success", "ActionID": originate["ActionID"], "Message": "late"})
        response = await client.send_action({"Action": "Getvar", "Variable": "X"})
        assert isinstance(response, Message)
        assert response["Value"] == "fresh"
        assert client.connected


# -- (c) the key regression: no re-send after a dropped connection --------------------------------------------


async def test_connection_lost_fails_the_action_and_it_is_never_resent(asterisk: FakeAsterisk,
                                                                        make_client: ClientFactory) -> None:
    logins: list[float] = []

    async def on_login() -> None:
        logins.append(time.monotonic())

    async with asyncio.timeout(TEST_TIMEOUT):
        client = await make_client(setup=lambda c: c.on_login(on_login), action_timeout=10.0)
        await client.wait_connected(2.0)
        pending = asyncio.create_task(client.send_action(dict(ORIGINATE)))
        await asterisk.wait_until(lambda: asterisk.count("Originate") == 1)
        dropped = time.monotonic()
        await asterisk.drop()
        with pytest.raises(AmiConnectionLost):
            await pending
        assert time.monotonic() - dropped < 0.5
        assert not client.connected

        await asterisk.wait_until(lambda: asterisk.count("Login") == 2, timeout=RECONNECT)
        await client.wait_connected(1.0)
        await asyncio.sleep(0.2)  # FullyBooted has been handled: panoramisk's re-send would have happened by now
        assert client.connected
    assert asterisk.connections == 2
    assert asterisk.count("Originate") == 1
    assert [number for number, action in asterisk.actions if action["Action"] == "Originate"] == [1]
    assert len(logins) == 2


async def test_several_pending_actions_all_fail_on_connection_loss(asterisk: FakeAsterisk,
                                                                    make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client, action_timeout=10.0)
        pending = [asyncio.create_task(client.send_action({**ORIGINATE, "Exten": str(n)})) for n in range(3)]
        await asterisk.wait_until(lambda: asterisk.count("Originate") == 3)
        await asterisk.drop()
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(result, AmiConnectionLost) for result in results)
        await asterisk.wait_until(lambda: asterisk.count("Login") == 2, timeout=RECONNECT)
        await client.wait_connected(1.0)
        await asyncio.sleep(0.2)
    assert asterisk.count("Originate") == 3


async def test_an_async_originate_already_queued_fails_at_once_when_the_connection_drops(
        asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    """panoramisk drops, without failing it, an action that had any answer before the drop (here Asterisk's
    "Originate successfully queued", while the OriginateResponse is awaited): its caller would wait out the whole
    timeout not knowing whether the phone rings. The wrapper fails it with AmiConnectionLost at once."""
    asterisk.replies["originate"] = success(Message="Originate successfully queued")
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client, action_timeout=10.0)
        pending = asyncio.create_task(client.send_action({**ORIGINATE, "Async": "true"}, timeout=10.0))
        await asterisk.wait_until(lambda: asterisk.count("Originate") == 1)
        await asyncio.sleep(0.1)  # the queued answer has arrived; the OriginateResponse never will
        dropped = time.monotonic()
        await asterisk.drop()
        with pytest.raises(AmiConnectionLost):
            await pending
        assert time.monotonic() - dropped < 0.5
        await asterisk.wait_until(lambda: asterisk.count("Login") == 2, timeout=RECONNECT)
        await client.wait_connected(1.0)
    assert asterisk.count("Originate") == 1


# -- (d) heartbeat -------------------------------------------------------------------------------------------


async def test_healthy_heartbeat_keeps_the_connection(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        await connected_client(make_client, heartbeat_interval=0.1, heartbeat_timeout=0.2)
        await asterisk.wait_until(lambda: asterisk.count("Ping") >= 3)
    assert asterisk.connections == 1


async def test_missed_heartbeat_aborts_and_reconnects(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        with capture_logs() as logs:
            client = await connected_client(make_client, heartbeat_interval=0.2, heartbeat_timeout=0.2)
            await asterisk.wait_until(lambda: asterisk.count("Ping") >= 1)
            asterisk.answer_ping = False
            silent_since = time.monotonic()
            # The client gives up on the socket (the peer sees its connection end) within interval + timeout.
            await asterisk.wait_until(lambda: not client.connected, timeout=1.5)
            assert time.monotonic() - silent_since < 1.0
            asterisk.answer_ping = True
            await asterisk.wait_until(lambda: asterisk.connections == 2 and asterisk.count("Login") == 2,
                                      timeout=RECONNECT)
            await client.wait_connected(1.0)
            pings_after = asterisk.count("Ping")
            await asterisk.wait_until(lambda: asterisk.count("Ping") > pings_after)
            assert client.connected
    assert asterisk.connections == 2
    assert "ami.heartbeat_missed" in [entry["event"] for entry in logs]


async def test_a_peer_that_never_answers_login_is_dropped_and_retried(asterisk: FakeAsterisk,
                                                                      make_client: ClientFactory) -> None:
    asterisk.answer_login = False
    async with asyncio.timeout(TEST_TIMEOUT):
        with capture_logs() as logs:
            client = await make_client(heartbeat_interval=0.1, login_timeout=0.3)
            await asterisk.wait_until(lambda: asterisk.count("Login") == 1)
            assert not client.connected
            asterisk.answer_login = True
            # The stuck socket is aborted after the login timeout; the reconnect logs in.
            await asterisk.wait_until(lambda: asterisk.connections == 2 and asterisk.count("Login") == 2,
                                      timeout=RECONNECT)
            await client.wait_connected(1.0)
    assert "ami.login_timeout" in [entry["event"] for entry in logs]


# -- (e) events ----------------------------------------------------------------------------------------------


def event(name: str, uniqueid: str, **headers: str) -> dict[str, str]:
    return {"Event": name, "Privilege": "call,all", "Uniqueid": uniqueid, "Linkedid": uniqueid, **headers}


async def test_subscribers_get_their_events_in_order_despite_slow_and_failing_handlers(
    asterisk: FakeAsterisk, make_client: ClientFactory
) -> None:
    slow: list[tuple[str, str]] = []
    fast: list[tuple[str, str]] = []
    fast_done = asyncio.Event()
    slow_done = asyncio.Event()

    async def slow_handler(message: Message) -> None:
        if not slow:
            await asyncio.sleep(0.3)  # a slow first event must not let later ones overtake it
        slow.append((message["Event"], message["Uniqueid"]))
        if len(slow) == 4:
            slow_done.set()
        if message["Event"] == "Newchannel" and message["Uniqueid"] == "2":
            raise RuntimeError("handler bug")

    async def fast_handler(message: Message) -> None:
        fast.append((message["Event"], message["Uniqueid"]))
        if len(fast) == 3:
            fast_done.set()

    def subscribe(client: AmiClient) -> None:
        client.subscribe(["Newchannel", "Hangup"], slow_handler)
        client.subscribe(["new*"], fast_handler)  # shell-style and case-insensitive

    async with asyncio.timeout(TEST_TIMEOUT):
        with capture_logs() as logs:
            await make_client(setup=subscribe)
            await asterisk.wait_until(lambda: asterisk.count("Login") == 1)
            await asyncio.sleep(0.05)
            await asterisk.push(
                event("Newchannel", "1"),
                event("Newstate", "1", ChannelStateDesc="Ring"),
                event("Hangup", "1", Cause="16"),
            )
            await asterisk.push(event("Newchannel", "2"), event("VarSet", "2"), event("Hangup", "2", Cause="16"))
            await fast_done.wait()
            assert slow == []  # the fast subscriber did not wait for the slow one
            await slow_done.wait()
    assert slow == [("Newchannel", "1"), ("Hangup", "1"), ("Newchannel", "2"), ("Hangup", "2")]
    assert fast == [("Newchannel", "1"), ("Newstate", "1"), ("Newchannel", "2")]
    failures = [entry for entry in logs if entry["event"] == "ami.event_handler_failed"]
    assert [(entry["uniqueid"], entry["linkedid"]) for entry in failures] == [("2", "2")]


async def test_events_with_an_action_id_of_a_pending_action_go_to_the_action(
    asterisk: FakeAsterisk, make_client: ClientFactory
) -> None:
    received: list[str] = []

    async def handler(message: Message) -> None:
        received.append(message["Uniqueid"])

    asterisk.replies["status"] = lambda action: [
        {"Response": "Success", "ActionID": action["ActionID"], "EventList": "start"},
        {"Event": "Status", "ActionID": action["ActionID"], "Uniqueid": "listed"},
        {"Event": "StatusComplete", "ActionID": action["ActionID"], "EventList": "Complete"},
    ]
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await make_client(setup=lambda c: c.subscribe(["Status", "Newchannel"], handler))
        await client.wait_connected(2.0)
        await client.send_action({"Action": "Status"})
        await asterisk.push(event("Newchannel", "pushed"))
        await asyncio.sleep(0.1)
    assert received == ["pushed"]



async def test_full_event_queue_drops_the_event_and_keeps_the_connection(asterisk: FakeAsterisk,
                                                                         make_client: ClientFactory) -> None:
    release = asyncio.Event()
    handled: list[str] = []

    async def blocked(message: Message) -> None:
        await release.wait()
        handled.append(message["Uniqueid"])

    async with asyncio.timeout(TEST_TIMEOUT):
        with capture_logs() as logs:
            client = await make_client(setup=lambda c: c.subscribe(["Newchannel"], blocked), event_queue_size=1)
            await client.wait_connected(2.0)
            await asterisk.push(event("Newchannel", "1"))  # taken by the handler, which then blocks
            await asyncio.sleep(0.05)
            await asterisk.push(event("Newchannel", "2"), event("Newchannel", "3"))  # 2 queued, 3 has no room
            await eventually(lambda: any(entry["event"] == "ami.event_queue_full" for entry in logs))
            assert client.connected
            release.set()
            await eventually(lambda: len(handled) == 2)
            await client.send_action({"Action": "Ping"})
    assert handled == ["1", "2"]
    assert [entry["uniqueid"] for entry in logs if entry["event"] == "ami.event_queue_full"] == ["3"]
    assert asterisk.connections == 1

# -- (f) on_login --------------------------------------------------------------------------------------------


async def test_on_login_runs_after_every_login_and_a_failing_callback_is_contained(
    asterisk: FakeAsterisk, make_client: ClientFactory
) -> None:
    logins: list[bool] = []
    second_login = asyncio.Event()

    async def resync() -> None:
        logins.append(client.connected)
        if len(logins) == 2:
            second_login.set()

    async def broken() -> None:
        raise RuntimeError("resync failed")

    def setup(c: AmiClient) -> None:
        c.on_login(broken)
        c.on_login(resync)

    async with asyncio.timeout(TEST_TIMEOUT):
        with capture_logs() as logs:
            client = await make_client(setup=setup)
            await client.wait_connected(2.0)
            await asterisk.wait_until(lambda: len(logins) == 1, timeout=1.0)
            await asterisk.drop()
            await asyncio.wait_for(second_login.wait(), RECONNECT)
    assert logins == [True, True]
    assert [entry["event"] for entry in logs].count("ami.login_callback_failed") == 2


async def test_on_login_waits_until_asterisk_is_fully_booted(asterisk: FakeAsterisk,
                                                             make_client: ClientFactory) -> None:
    """A restarting Asterisk takes logins before app_queue is loaded: a resync then would find no QueueStatus."""
    asterisk.booted = False
    resynced = asyncio.Event()

    async def resync() -> None:
        resynced.set()

    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client, setup=lambda c: c.on_login(resync))
        await client.send_action({"Action": "Ping"})  # a round trip after the login: its callbacks had their turn
        assert not resynced.is_set()
        await asterisk.push(FULLY_BOOTED)
        await asyncio.wait_for(resynced.wait(), 1.0)


async def test_on_login_runs_anyway_when_fully_booted_never_comes(asterisk: FakeAsterisk,
                                                                  make_client: ClientFactory) -> None:
    asterisk.booted = False
    resynced = asyncio.Event()

    async def resync() -> None:
        resynced.set()

    async with asyncio.timeout(TEST_TIMEOUT):
        with capture_logs() as logs:
            await connected_client(make_client, setup=lambda c: c.on_login(resync), boot_timeout=0.3)
            await asyncio.wait_for(resynced.wait(), 2.0)
    assert [entry["event"] for entry in logs].count("ami.fully_booted_missing") == 1


# -- lifecycle --------------------------------------------------------------------------------------------------


async def test_stop_closes_the_connection(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        await client.stop()
        await asterisk.wait_until(lambda: asterisk.open_connections == 0)
        assert not client.connected
        with pytest.raises(AmiNotConnected):
            await client.send_action({"Action": "Ping"})


async def test_stop_fails_pending_actions_at_once(asterisk: FakeAsterisk, make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client, action_timeout=10.0)
        pending = asyncio.create_task(client.send_action(dict(ORIGINATE)))
        await asterisk.wait_until(lambda: asterisk.count("Originate") == 1)
        stopped = time.monotonic()
        await client.stop()
        with pytest.raises(AmiConnectionLost):
            await pending
        assert time.monotonic() - stopped < 0.5


async def test_stop_while_waiting_to_reconnect_stays_stopped(asterisk: FakeAsterisk,
                                                            make_client: ClientFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = await connected_client(make_client)
        await asterisk.drop()
        await asterisk.wait_until(lambda: not client.connected, timeout=1.0)
        await client.stop()
        await asyncio.sleep(1.3)  # past panoramisk's 1 s reconnect timer
    assert asterisk.connections == 1
    assert asterisk.count("Login") == 1
    assert not client.connected


async def test_reconnect_backs_off_while_asterisk_is_away_and_resets_after_login(make_client: ClientFactory) -> None:
    from tests.harness import free_tcp_port

    peer = FakeAsterisk()
    peer.port = free_tcp_port()  # nothing listens there yet
    client = AmiClient("127.0.0.1", peer.port, USERNAME, SECRET, reconnect_delay=1, heartbeat_interval=30.0)
    try:
        async with asyncio.timeout(TEST_TIMEOUT):
            await client.start()
            # 1 s, 2 s, then capped at 3 s (doubling alone would make it 4): a restarted Asterisk is found again
            # within seconds, since its queues stay empty until the platform puts the agents back.
            await eventually(lambda: client.reconnect_delay == 3, timeout=2.5)
            await peer.start(peer.port)
            await client.wait_connected(4.5)
        assert client.reconnect_delay == 1
    finally:
        await client.stop()
        await peer.stop()
