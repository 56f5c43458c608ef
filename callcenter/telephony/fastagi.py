"""The platform's single FastAGI server.

Written on asyncio streams rather than panoramisk's ``Application``, whose header loop spins for ever on a
partial header (a half-open connection freezes the whole event loop, and with it every call). Here a connection
must deliver its whole AGI environment within ``header_timeout``, lines are bounded, and a broken peer only
ever costs its own connection.

Every request runs one registered handler (``Contribution.agi``). The dialplan calls
``AGI(agi://host:port/<handler>,...)`` after clearing ``CC_AGI_RESULT``; the server sets ``CC_AGI_RESULT=ok``
only when the handler completed, so the dialplan branches to its failure path on anything else (server down,
unknown handler, handler error) — see dialplans/extensions.conf.j2.

Only the Asterisk host may ask: a connection from an address outside ``allowed_peers`` (``CC_AGI_ALLOWED_PEERS``,
loopback by default) is closed before a byte is read or written, and logged. A handler raises work orders and
writes the call log, so a stranger who reached the port must not be able to run one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from callcenter.logs import get_logger

log = get_logger(__name__)

MAX_LINE = 8192
MAX_HEADERS = 256
RESULT_VARIABLE = "CC_AGI_RESULT"
_RESPONSE = re.compile(
    r"^(?P<code>\d{3})(?:[ -](?:result=(?P<result>-?\d+|\S*))?\s*(?:\((?P<data>.*)\))?(?P<rest>.*))?$"
)


class AgiError(RuntimeError):
    pass


class AgiHangup(AgiError):
    """The channel hung up; further commands cannot run."""


@dataclasses.dataclass(frozen=True, slots=True)
class AgiResponse:
    code: int
    result: str
    data: str | None
    raw: str

    @property
    def ok(self) -> bool:
        return self.code == 200


@dataclasses.dataclass(frozen=True, slots=True)
class AgiRequest:
    """The AGI environment Asterisk sent, plus the handler name and its arguments."""

    env: Mapping[str, str]
    script: str
    args: tuple[str, ...]

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def caller_number(self) -> str:
        value = self.env.get("agi_callerid", "")
        return "" if value == "unknown" else value

    @property
    def extension(self) -> str:
        return self.env.get("agi_extension", "")

    def arg(self, index: int, default: str = "") -> str:
        return self.args[index] if index < len(self.args) else default


class AgiChannel:
    """Commands to the channel of one AGI request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command_timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._command_timeout = command_timeout
        self.hung_up = False

    async def command(self, line: str, timeout: float | None = None) -> AgiResponse:
        if "\n" in line or "\r" in line:
            raise AgiError("an AGI command is one line")
        self._writer.write(line.encode() + b"\n")
        await self._writer.drain()
        return await asyncio.wait_for(self._read_response(), timeout or self._command_timeout)

    async def _read_response(self) -> AgiResponse:
        while True:
            raw = await self._reader.readline()
            if not raw:
                self.hung_up = True
                raise AgiHangup("connection closed by Asterisk")
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line == "HANGUP":  # Asterisk's SIGHUP notice; the response to our command follows.
                self.hung_up = True
                continue
            if line.startswith("520-"):  # multi-line usage text ends with "520 End of proper usage."
                while line and not line.startswith("520 "):
                    line = (await self._reader.readline()).decode(errors="replace").rstrip("\r\n")
                return AgiResponse(520, "", None, line)
            match = _RESPONSE.match(line)
            if not match:
                raise AgiError(f"unexpected AGI response {line!r}")
            response = AgiResponse(int(match.group("code")), match.group("result") or "", match.group("data"), line)
            if response.code == 511:
                self.hung_up = True
                raise AgiHangup("command on a dead channel")
            if response.code == 100:  # provisional ("100 result=0 Trying..." from GOSUB); the answer follows.
                continue
            return response

    async def set_variable(self, name: str, value: str | int) -> None:
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        response = await self.command(f'SET VARIABLE {name} "{text}"')
        if not response.ok:
            raise AgiError(f"SET VARIABLE {name} failed: {response.raw}")

    async def get_variable(self, name: str) -> str | None:
        response = await self.command(f"GET VARIABLE {name}")
        return response.data if response.ok and response.result == "1" else None

    async def answer(self) -> None:
        response = await self.command("ANSWER")
        if not response.ok or response.result == "-1":
            raise AgiError(f"ANSWER failed: {response.raw}")

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f'VERBOSE "{message}" {level}')


Handler = Callable[[AgiRequest, AgiChannel], Awaitable[None]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_allowed(peer: object, allowed: Collection[Network] | None) -> bool:
    """Whether the connection's peer (``peername``: ``(host, port, …)``) is in ``allowed``; None allows anyone. An
    IPv4 peer on a dual-stack socket (``::ffff:127.0.0.1``) is judged by its IPv4 address."""
    if allowed is None:
        return True
    if not isinstance(peer, tuple) or not peer:
        return False  # not an IP socket (a Unix socket has no address to judge): refused
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in allowed)


class FastAgiServer:
    """Accepts FastAGI connections and runs the handler named by the request path."""

    def __init__(self, host: str, port: int, handlers: Mapping[str, Handler], *, header_timeout: float = 5.0,
                 command_timeout: float = 10.0, handler_timeout: float = 60.0,
                 allowed_peers: Collection[Network] | None = None) -> None:
        """``allowed_peers``: the addresses requests are served from (the Asterisk host); None serves anyone."""
        self.host = host
        self.port = port
        self.handlers = dict(handlers)
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self.handler_timeout = handler_timeout
        self.allowed_peers = None if allowed_peers is None else tuple(allowed_peers)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, limit=MAX_LINE)
        sockets = self._server.sockets or []
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]
        log.info("fastagi.listening", host=self.host, port=self.port, handlers=sorted(self.handlers))

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # End the connections before wait_closed(): from Python 3.12 on it waits for every one of them to finish.
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # Only stop() cancels this task. End it normally: asyncio's start_server callback (3.11, early 3.12)
            # calls task.exception() on a cancelled task and logs a spurious "Exception in callback" traceback.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_environment(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        env: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            raw = await reader.readline()
            if not raw:
                return None  # EOF inside the header: the peer gave up; drop it, nothing else waits on it.
            line = raw.decode(errors="replace").rstrip("\r\n")
            if not line:
                return env
            key, sep, value = line.partition(":")
            if sep:
                env[key.strip()] = value.strip()
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer_allowed(peer, self.allowed_peers):
            # Closed unread and unanswered (by _accept): no handler, no variable set, nothing learnt.
            log.warning("fastagi.peer_refused", peer=str(peer[0]) if isinstance(peer, tuple) and peer else str(peer))
            return
        try:
            env = await asyncio.wait_for(self._read_environment(reader), self.header_timeout)
        except (TimeoutError, ValueError, ConnectionError) as error:
            log.warning("fastagi.bad_header", peer=str(peer), error=type(error).__name__)
            return
        if env is None:
            log.warning("fastagi.incomplete_header", peer=str(peer))
            return
        request = _request_from_env(env)
        bound = log.bind(uniqueid=request.uniqueid, channel=request.channel, handler=request.script)
        channel = AgiChannel(reader, writer, self.command_timeout)
        handler = self.handlers.get(request.script)
        if handler is None:
            bound.error("fastagi.unknown_handler")
            with contextlib.suppress(Exception):
                await channel.set_variable(RESULT_VARIABLE, "unknown-handler")
            return
        started = time.monotonic()
        try:
            await asyncio.wait_for(handler(request, channel), self.handler_timeout)
            await channel.set_variable(RESULT_VARIABLE, "ok")
        except AgiHangup:
            bound.info("fastagi.caller_hung_up", elapsed=round(time.monotonic() - started, 3))
        except Exception as error:
            bound.exception("fastagi.handler_failed", error=str(error))
            with contextlib.suppress(Exception):
                await channel.set_variable(RESULT_VARIABLE, "error")
        else:
            bound.info("fastagi.handled", elapsed=round(time.monotonic() - started, 3))


def _request_from_env(env: dict[str, str]) -> AgiRequest:
    script = env.get("agi_network_script", "").strip("/").split("?", 1)[0]
    args: list[str] = []
    index = 1
    while f"agi_arg_{index}" in env:
        args.append(env[f"agi_arg_{index}"])
        index += 1
    return AgiRequest(env=env, script=script, args=tuple(args))
