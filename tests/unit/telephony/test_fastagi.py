"""FastAgiServer driven over real TCP by a test client that speaks AGI the way Asterisk does."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from callcenter.telephony.fastagi import (
    MAX_LINE,
    AgiChannel,
    AgiError,
    AgiHangup,
    AgiRequest,
    AgiResponse,
    FastAgiServer,
    Handler,
)

TEST_TIMEOUT = 5.0  # every test body runs under this; a regression fails instead of hanging

# asyncio timeouts cannot fire while the event loop spins without awaiting (the panoramisk FastAGI bug);
# pytest-timeout's SIGALRM still interrupts it, so a frozen loop fails the test too.
pytestmark = pytest.mark.timeout(15)
STEP = 2.0  # the longest the fake Asterisk waits for a single line from the server

OK_RESULT = 'SET VARIABLE CC_AGI_RESULT "ok"'
Answer = Callable[[str], Iterable[str]]


def always_ok(_command: str) -> list[str]:
    return ["200 result=1"]


class FakeAsterisk:
    """One AGI connection seen from Asterisk's side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    @classmethod
    async def request(cls, port: int, script: str, *args: str, uniqueid: str = "1700000000.1",
                      channel: str = "PJSIP/elder-0001-00000001", callerid: str = "13800000000") -> FakeAsterisk:
        side = await cls.open(port)
        env = {
            "agi_network": "yes",
            "agi_network_script": script,
            "agi_request": f"agi://127.0.0.1:{port}/{script}",
            "agi_channel": channel,
            "agi_language": "zh",
            "agi_type": "PJSIP",
            "agi_uniqueid": uniqueid,
            "agi_version": "22.0.0",
            "agi_callerid": callerid,
            "agi_calleridname": "unknown",
            "agi_callingpres": "0",
            "agi_dnid": "12349",
            "agi_context": "cc-inbound",
            "agi_extension": "12349",
            "agi_priority": "3",
            "agi_enhanced": "0.0",
            "agi_accountcode": "",
            "agi_threadid": "140000000000000",
            **{f"agi_arg_{index}": value for index, value in enumerate(args, start=1)},
        }
        await side.send_raw("".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n")
        return side

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, *lines: str) -> None:
        await self.send_raw("".join(f"{line}\n" for line in lines).encode())

    async def read_command(self) -> str | None:
        """The next command line, or None once the server closed the connection."""
        raw = await asyncio.wait_for(self.reader.readline(), STEP)
        return raw.decode().rstrip("\n") if raw else None

    async def converse(self, answer: Answer = always_ok) -> list[str]:
        """Answer every command until the server hangs up; return the commands in order."""
        commands: list[str] = []
        while (command := await self.read_command()) is not None:
            commands.append(command)
            await self.send(*answer(command))
        return commands

    async def closed_by_server(self) -> bool:
        with contextlib.suppress(ConnectionError):
            return await asyncio.wait_for(self.reader.read(), STEP) == b""
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class Ticker:
    """Stamps the time every few milliseconds; a gap means the event loop was blocked."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.stamps: list[float] = []

    async def run(self) -> None:
        while True:
            self.stamps.append(time.monotonic())
            await asyncio.sleep(self.interval)

    @property
    def max_gap(self) -> float:
        stamps = [*self.stamps, time.monotonic()]
        return max(b - a for a, b in itertools.pairwise(stamps))


@contextlib.asynccontextmanager
async def ticking() -> AsyncIterator[Ticker]:
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0)
    try:
        yield ticker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


ServerFactory = Callable[..., Awaitable[FastAgiServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    servers: list[FastAgiServer] = []

    async def make(handlers: Mapping[str, Handler], **options: Any) -> FastAgiServer:
        server = FastAgiServer("127.0.0.1", 0, handlers, **options)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await asyncio.wait_for(server.stop(), TEST_TIMEOUT)


async def noop(_request: AgiRequest, _channel: AgiChannel) -> None:
    return None


async def served_ok(port: int, script: str = "noop") -> list[str]:
    side = await FakeAsterisk.request(port, script)
    try:
        return await side.converse()
    finally:
        await side.close()


# -- (a) a registered handler ----------------------------------------------------------------------------


async def test_handler_gets_the_request_its_commands_are_sent_and_result_is_ok(make_server: ServerFactory) -> None:
    seen: list[AgiRequest] = []
    got: list[str | None] = []

    async def greet(request: AgiRequest, channel: AgiChannel) -> None:
        seen.append(request)
        await channel.answer()
        got.append(await channel.get_variable("CC_ELDER_ID"))
        got.append(await channel.get_variable("CC_MISSING"))
        await channel.set_variable("CC_NOTE", 'say "hi" \\ bye')

    def answer(command: str) -> list[str]:
        return {
            "ANSWER": ["200 result=0"],
            "GET VARIABLE CC_ELDER_ID": ["200 result=1 (42)"],
            "GET VARIABLE CC_MISSING": ["200 result=0"],
        }.get(command, ["200 result=1"])

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"greet": greet})
        assert server.port != 0
        side = await FakeAsterisk.request(server.port, "greet", "PJSIP/elder-0001", "1700000000.1", "12349",
                                          uniqueid="1700000000.7", callerid="13912345678")
        commands = await side.converse(answer)
        await side.close()

    assert commands == [
        "ANSWER",
        "GET VARIABLE CC_ELDER_ID",
        "GET VARIABLE CC_MISSING",
        'SET VARIABLE CC_NOTE "say \\"hi\\" \\\\ bye"',
        OK_RESULT,
    ]
    assert got == ["42", None]
    [request] = seen
    assert request.script == "greet"
    assert request.args == ("PJSIP/elder-0001", "1700000000.1", "12349")
    assert request.arg(2) == "12349"
    assert request.arg(5, "none") == "none"
    assert request.uniqueid == "1700000000.7"
    assert request.channel == "PJSIP/elder-0001-00000001"
    assert request.caller_number == "13912345678"
    assert request.extension == "12349"


@pytest.mark.parametrize("script", ["greet", "/greet", "greet?lang=zh"])
async def test_handler_name_ignores_slashes_and_query(make_server: ServerFactory, script: str) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"greet": noop})
        assert await served_ok(server.port, script) == [OK_RESULT]


async def test_unknown_caller_id_reads_as_empty(make_server: ServerFactory) -> None:
    numbers: list[str] = []

    async def record(request: AgiRequest, _channel: AgiChannel) -> None:
        numbers.append(request.caller_number)

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"record": record})
        side = await FakeAsterisk.request(server.port, "record", callerid="unknown")
        assert await side.converse() == [OK_RESULT]
        await side.close()
    assert numbers == [""]


# -- (b) unknown handler, (c) failing handlers -----------------------------------------------------------


async def test_unknown_handler_sets_unknown_handler(make_server: ServerFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"greet": noop})
        side = await FakeAsterisk.request(server.port, "no-such-handler")
        assert await side.converse() == ['SET VARIABLE CC_AGI_RESULT "unknown-handler"']
        await side.close()


async def test_failing_handler_sets_error_and_server_keeps_serving(make_server: ServerFactory) -> None:
    async def broken(_request: AgiRequest, channel: AgiChannel) -> None:
        await channel.answer()
        raise RuntimeError("database unavailable")

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"broken": broken, "noop": noop})
        with capture_logs() as logs:
            side = await FakeAsterisk.request(server.port, "broken")
            assert await side.converse() == ["ANSWER", 'SET VARIABLE CC_AGI_RESULT "error"']
            await side.close()
        assert any(entry["event"] == "fastagi.handler_failed" and entry["log_level"] == "error" for entry in logs)
        assert server.listening
        assert await served_ok(server.port) == [OK_RESULT]


async def test_handler_over_its_time_limit_sets_error(make_server: ServerFactory) -> None:
    async def stuck(_request: AgiRequest, _channel: AgiChannel) -> None:
        await asyncio.sleep(30)

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"stuck": stuck}, handler_timeout=0.2)
        started = time.monotonic()
        side = await FakeAsterisk.request(server.port, "stuck")
        assert await side.converse() == ['SET VARIABLE CC_AGI_RESULT "error"']
        await side.close()
        assert time.monotonic() - started < 1.5


async def test_unanswered_command_times_out_as_error(make_server: ServerFactory) -> None:
    async def ask(_request: AgiRequest, channel: AgiChannel) -> None:
        await channel.answer()

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"ask": ask}, command_timeout=0.2)
        side = await FakeAsterisk.request(server.port, "ask")
        assert await side.read_command() == "ANSWER"  # ...and Asterisk never answers it
        assert await side.read_command() == 'SET VARIABLE CC_AGI_RESULT "error"'
        await side.close()


# -- (d) broken headers never freeze the loop -------------------------------------------------------------


async def _half_close(side: FakeAsterisk) -> None:
    side.writer.write_eof()


async def _close(side: FakeAsterisk) -> None:
    await side.close()


@pytest.mark.parametrize(
    ("partial", "hang_up"),
    [
        pytest.param(b"agi_network: yes\nagi_network_scr", _half_close, id="half-close-mid-line"),
        pytest.param(b"agi_network: yes\nagi_network_script: noop\n", _half_close, id="half-close-between-lines"),
        pytest.param(b"agi_network: yes\nagi_netw", _close, id="close-mid-line"),
        pytest.param(b"", _close, id="close-before-anything"),
    ],
)
async def test_partial_header_then_eof_does_not_freeze_the_loop(
    make_server: ServerFactory, partial: bytes, hang_up: Callable[[FakeAsterisk], Awaitable[None]]
) -> None:
    calls: list[str] = []

    async def record(request: AgiRequest, _channel: AgiChannel) -> None:
        calls.append(request.uniqueid)

    async with asyncio.timeout(TEST_TIMEOUT), ticking() as ticker:
        # header_timeout is long: the broken peer must be dropped because of its EOF, not a timer.
        server = await make_server({"noop": record}, header_timeout=30)
        with capture_logs() as logs:
            broken = await FakeAsterisk.open(server.port)
            await broken.send_raw(partial)
            await hang_up(broken)
            await asyncio.sleep(0.05)  # let the server see the EOF before the good request arrives
            started = time.monotonic()
            good = await FakeAsterisk.request(server.port, "noop", uniqueid="1700000000.2")
            assert await good.converse() == [OK_RESULT]
            served_in = time.monotonic() - started
            await good.close()
            if hang_up is _half_close:
                assert await broken.closed_by_server()
            await broken.close()
            await asyncio.sleep(0.05)
        assert served_in < 1.0
        assert ticker.max_gap < 0.5, f"event loop blocked for {ticker.max_gap:.2f}s"
        assert len(ticker.stamps) > 5
    assert calls == ["1700000000.2"]
    assert any(entry["event"] == "fastagi.incomplete_header" for entry in logs)


async def test_silent_partial_header_is_dropped_after_header_timeout(make_server: ServerFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT), ticking() as ticker:
        server = await make_server({"noop": noop}, header_timeout=0.3)
        with capture_logs() as logs:
            silent = await FakeAsterisk.open(server.port)
            await silent.send_raw(b"agi_network: yes\nagi_network_script: no")
            opened = time.monotonic()
            # Served while the silent peer is still holding its connection open.
            assert await served_ok(server.port) == [OK_RESULT]
            assert time.monotonic() - opened < 0.3
            assert await silent.closed_by_server()
            dropped_after = time.monotonic() - opened
            await silent.close()
        assert 0.2 < dropped_after < 1.5
        assert ticker.max_gap < 0.5, f"event loop blocked for {ticker.max_gap:.2f}s"
    assert [entry["error"] for entry in logs if entry["event"] == "fastagi.bad_header"] == ["TimeoutError"]


async def test_header_dripped_line_by_line_still_times_out(make_server: ServerFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"noop": noop}, header_timeout=0.3)
        drip = await FakeAsterisk.open(server.port)
        opened = time.monotonic()
        with contextlib.suppress(ConnectionError):
            for index in range(40):
                await drip.send(f"agi_x{index}: y")
                await asyncio.sleep(0.02)
        assert await drip.closed_by_server()
        assert time.monotonic() - opened < 1.5
        await drip.close()
        assert await served_ok(server.port) == [OK_RESULT]


async def test_oversized_header_line_is_dropped(make_server: ServerFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"noop": noop})
        huge = await FakeAsterisk.open(server.port)
        with contextlib.suppress(ConnectionError):
            await huge.send_raw(b"agi_network: yes\nagi_x: " + b"a" * (MAX_LINE * 2) + b"\n\n")
        assert await huge.closed_by_server()
        await huge.close()
        assert await served_ok(server.port) == [OK_RESULT]


async def test_endless_header_is_dropped(make_server: ServerFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"noop": noop})
        endless = await FakeAsterisk.open(server.port)
        with contextlib.suppress(ConnectionError):
            await endless.send_raw(b"".join(f"agi_x{index}: y\n".encode() for index in range(1000)))
        assert await endless.closed_by_server()
        await endless.close()


# -- (e) hangups --------------------------------------------------------------------------------------------


async def test_hangup_notice_is_tolerated_and_511_raises_agihangup(make_server: ServerFactory) -> None:
    outcome: list[Any] = []

    async def talk(_request: AgiRequest, channel: AgiChannel) -> None:
        response = await channel.command("STREAM FILE welcome \"\"")
        outcome.append((response.code, response.result, channel.hung_up))
        try:
            await channel.verbose("after hangup")
        except AgiHangup as error:
            outcome.append(error)
            raise

    def answer(command: str) -> list[str]:
        if command.startswith("STREAM FILE"):
            return ["HANGUP", "200 result=-1 endpos=0"]
        return ["511 Command Not Permitted on a dead channel or intercept routine"]

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"talk": talk, "noop": noop})
        with capture_logs() as logs:
            side = await FakeAsterisk.request(server.port, "talk")
            # No CC_AGI_RESULT after a hangup: the channel is gone.
            assert await side.converse(answer) == ['STREAM FILE welcome ""', 'VERBOSE "after hangup" 1']
            await side.close()
        assert server.listening
        assert await served_ok(server.port) == [OK_RESULT]
    assert outcome[0] == (200, "-1", True)
    assert isinstance(outcome[1], AgiHangup)
    events = [entry["event"] for entry in logs]
    assert "fastagi.caller_hung_up" in events
    assert "fastagi.handler_failed" not in events


async def test_asterisk_closing_mid_command_raises_agihangup(make_server: ServerFactory) -> None:
    errors: list[BaseException] = []
    finished = asyncio.Event()

    async def talk(_request: AgiRequest, channel: AgiChannel) -> None:
        try:
            await channel.answer()
        except AgiHangup as error:
            errors.append(error)
            raise
        finally:
            finished.set()

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"talk": talk, "noop": noop})
        side = await FakeAsterisk.request(server.port, "talk")
        assert await side.read_command() == "ANSWER"
        await side.close()
        await finished.wait()
        assert await served_ok(server.port) == [OK_RESULT]
    [error] = errors
    assert isinstance(error, AgiHangup)


async def test_handler_that_swallows_the_hangup_does_not_crash_the_server(make_server: ServerFactory) -> None:
    async def stubborn(_request: AgiRequest, channel: AgiChannel) -> None:
        with contextlib.suppress(AgiHangup):
            await channel.answer()

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"stubborn": stubborn, "noop": noop})
        with capture_logs() as logs:
            side = await FakeAsterisk.request(server.port, "stubborn")
            dead = ["511 Command Not Permitted on a dead channel or intercept routine"]
            assert await side.converse(lambda _command: dead) == ["ANSWER", OK_RESULT]
            await side.close()
        assert "fastagi.caller_hung_up" in [entry["event"] for entry in logs]
        assert await served_ok(server.port) == [OK_RESULT]


# -- (f) response parsing -------------------------------------------------------------------------------------


async def _responses_to(make_server: ServerFactory, replies: list[list[str]]) -> list[AgiResponse | Exception]:
    """Send one command per reply; Asterisk answers with the reply lines; return what the channel parsed."""
    results: list[AgiResponse | Exception] = []

    async def probe(_request: AgiRequest, channel: AgiChannel) -> None:
        for index in range(len(replies)):
            try:
                results.append(await channel.command(f"PROBE {index}"))
            except AgiError as error:
                results.append(error)

    def answer(command: str) -> list[str]:
        return replies[int(command.split()[1])] if command.startswith("PROBE") else ["200 result=1"]

    server = await make_server({"probe": probe})
    side = await FakeAsterisk.request(server.port, "probe")
    commands = await side.converse(answer)
    await side.close()
    assert commands == [*(f"PROBE {index}" for index in range(len(replies))), OK_RESULT]
    return results


async def test_multiline_520_usage_is_one_response_and_the_stream_stays_in_step(make_server: ServerFactory) -> None:
    usage = [
        "520-Invalid command syntax.  Proper usage follows:",
        "Usage: DATABASE PUT <family> <key> <value>",
        "       Adds or updates an entry in the Asterisk database for a given family, key, and value.",
        "520 End of proper usage.",
    ]
    async with asyncio.timeout(TEST_TIMEOUT):
        results = await _responses_to(make_server, [usage, ["200 result=1 (after)"]])
    first, second = results
    assert isinstance(first, AgiResponse)
    assert (first.code, first.ok, first.raw) == (520, False, "520 End of proper usage.")
    assert isinstance(second, AgiResponse)
    assert (second.code, second.result, second.data) == (200, "1", "after")


@pytest.mark.parametrize(
    ("line", "code", "result", "data"),
    [
        ("200 result=1", 200, "1", None),
        ("200 result=1 (13800000000)", 200, "1", "13800000000"),
        ("200 result=0 (value with (parens) and spaces)", 200, "0", "value with (parens) and spaces"),
        ("200 result= (timeout)", 200, "", "timeout"),
        ("200 result=-1", 200, "-1", None),
        ("200 result=0 endpos=8640", 200, "0", None),
        ("510 Invalid or unknown command", 510, "", None),
        ("520 Invalid command syntax.  Proper usage not available.", 520, "", None),
    ],
)
async def test_single_line_responses_parse(make_server: ServerFactory, line: str, code: int, result: str,
                                           data: str | None) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        [response] = await _responses_to(make_server, [[line]])
    assert isinstance(response, AgiResponse)
    assert (response.code, response.result, response.data, response.raw) == (code, result, data, line)
    assert response.ok == (code == 200)


async def test_crlf_line_endings_are_accepted(make_server: ServerFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        [response] = await _responses_to(make_server, [["200 result=1 (x)\r"]])
    assert isinstance(response, AgiResponse)
    assert (response.code, response.data) == (200, "x")


async def test_garbage_response_raises_agierror(make_server: ServerFactory) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        garbage, after = await _responses_to(make_server, [["hello there"], ["200 result=1"]])
    assert isinstance(garbage, AgiError)
    assert not isinstance(garbage, AgiHangup)
    assert isinstance(after, AgiResponse)
    assert after.ok


async def test_provisional_100_trying_is_not_taken_for_the_answer(make_server: ServerFactory) -> None:
    # GOSUB answers "100 result=0 Trying..." at once and "200 result=0 Gosub complete" when the routine returns.
    async with asyncio.timeout(TEST_TIMEOUT):
        gosub, after = await _responses_to(
            make_server, [["100 result=0 Trying...", "200 result=0 Gosub complete"], ["200 result=1 (next)"]]
        )
    assert isinstance(gosub, AgiResponse)
    assert (gosub.code, gosub.raw) == (200, "200 result=0 Gosub complete")
    assert isinstance(after, AgiResponse)
    assert after.data == "next"


async def test_multiline_command_is_refused_before_sending(make_server: ServerFactory) -> None:
    errors: list[Exception] = []

    async def inject(_request: AgiRequest, channel: AgiChannel) -> None:
        try:
            await channel.command("VERBOSE x\nHANGUP")
        except AgiError as error:
            errors.append(error)

    async with asyncio.timeout(TEST_TIMEOUT):
        server = await make_server({"inject": inject})
        side = await FakeAsterisk.request(server.port, "inject")
        assert await side.converse() == [OK_RESULT]
        await side.close()
    assert len(errors) == 1


# -- (g) lifecycle -------------------------------------------------------------------------------------------


async def test_listening_follows_start_and_stop() -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server = FastAgiServer("127.0.0.1", 0, {"noop": noop})
        assert not server.listening
        await server.start()
        try:
            assert server.listening
            assert server.port != 0
            assert await served_ok(server.port) == [OK_RESULT]
        finally:
            await server.stop()
        assert not server.listening
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", server.port)


async def test_stop_ends_connections_in_progress_promptly() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long_call(_request: AgiRequest, _channel: AgiChannel) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: loop_errors.append(context))
    async with asyncio.timeout(TEST_TIMEOUT):
        server = FastAgiServer("127.0.0.1", 0, {"long": long_call}, header_timeout=30)
        await server.start()
        busy = await FakeAsterisk.request(server.port, "long")
        silent = await FakeAsterisk.open(server.port)
        await silent.send_raw(b"agi_network: yes\n")
        await started.wait()
        begun = time.monotonic()
        await server.stop()
        assert time.monotonic() - begun < 1.0
        assert cancelled.is_set()
        assert not server.listening
        assert await busy.closed_by_server()
        assert await silent.closed_by_server()
        await busy.close()
        await silent.close()
    assert loop_errors == []  # no "Exception in callback" noise from the cancelled connection tasks
