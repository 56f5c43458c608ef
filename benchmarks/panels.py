"""Hundreds of agents' panels: authenticated WebSockets to the platform's ``/ws`` (the token as the first message),
in a process of their own.

The panels run in a child process (its own interpreter, its own event loop), so the benchmark's other threads
(the AMI reader, the sampler, SIPp's supervision) never hold the GIL while a frame arrives. Each panel stamps
every frame with ``time.time()`` the moment aiohttp hands it over — the same clock as Asterisk's AMI timestamps
(one machine) — and the frames of the watched types are sent to the parent as they come; the others are counted.
A panel the platform closes (1013: too slow) is reported, not reconnected.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import multiprocessing
import multiprocessing.connection
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from benchmarks.waitlog import WaitableLog

WATCHED = ("screen_pop", "call_ended", "conference_roster", "alarm_offer")
_TYPE = re.compile(r'"type": ?"([^"]+)"')  # the platform's frames start with their type
CONNECT_PARALLEL = 32


@dataclasses.dataclass(frozen=True)
class Panel:
    username: str
    role: str
    token: str


@dataclasses.dataclass(frozen=True)
class Frame:
    at: float  # time.time() when the panel had the frame
    username: str
    size: int  # bytes of JSON
    message: dict[str, Any]  # the fields the benchmarks use (see _summary)

    @property
    def type(self) -> str:
        return str(self.message.get("type"))


@dataclasses.dataclass
class FarmStats:
    connected: int = 0
    connect_errors: list[str] = dataclasses.field(default_factory=list)
    connect_seconds: float = 0.0
    frames_by_type: dict[str, int] = dataclasses.field(default_factory=dict)
    frames_by_role: dict[str, int] = dataclasses.field(default_factory=dict)
    closed_by_server: list[str] = dataclasses.field(default_factory=list)  # username: close code


class PanelFarm(WaitableLog[Frame]):
    """``with PanelFarm(url, panels) as farm``: all panels connected (each has had its ``hello``) on entry."""

    def __init__(self, ws_url: str, panels: Sequence[Panel], connect_timeout: float = 120.0) -> None:
        self.ws_url = ws_url
        self.panels = list(panels)
        self.connect_timeout = connect_timeout
        super().__init__()
        self.stats = FarmStats()
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._reader: threading.Thread | None = None
        self._finished = threading.Event()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def __enter__(self) -> PanelFarm:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._conn = parent
        self._process = context.Process(target=_child, args=(child, self.ws_url, self.panels), name="panels",
                                        daemon=True)
        self._process.start()
        child.close()
        if not parent.poll(self.connect_timeout):
            self.__exit__()
            raise RuntimeError(f"the panels did not connect within {self.connect_timeout:.0f} s")
        kind, connected, errors, seconds = parent.recv()
        assert kind == "ready"
        self.stats.connected, self.stats.connect_errors, self.stats.connect_seconds = connected, errors, seconds
        self._reader = threading.Thread(target=self._read, name="panel-frames", daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._finished.wait(30)
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
            self._process = None

    def _read(self) -> None:
        assert self._conn is not None
        try:
            while True:
                item = self._conn.recv()
                if item[0] == "frame":
                    _, at, index, size, message = item
                    self.append(Frame(at, self.panels[index].username, size, message))
                elif item[0] == "closed":
                    self.stats.closed_by_server.append(f"{self.panels[item[1]].username}: {item[2]}")
                elif item[0] == "stats":
                    self.stats.frames_by_type, self.stats.frames_by_role = item[1], item[2]
                    return
        except (EOFError, OSError):
            return
        finally:
            self._finished.set()


# -- the child process ----------------------------------------------------------------------------------------------

def _child(conn: multiprocessing.connection.Connection, ws_url: str, panels: list[Panel]) -> None:
    asyncio.run(_farm(conn, ws_url, panels))


def _summary(message: dict[str, Any]) -> dict[str, Any]:
    """What the parent needs of a watched frame (a screen-pop is several KB; the pipe carries less)."""
    summary = {key: message.get(key) for key in ("type", "call_id", "linkedid", "agent", "sos", "unknown_caller")}
    if message.get("type") == "screen_pop":
        summary["elder_id"] = (message.get("elder") or {}).get("id")
    if message.get("type") == "alarm_offer":
        alarm = message.get("alarm") or {}
        summary.update(alarm_id=alarm.get("id"), alarm_version=alarm.get("version"),
                       device_message_id=alarm.get("device_message_id"))
    if message.get("type") == "conference_roster":
        summary["participants"] = [{"id": p.get("id"), "role": p.get("role"), "state": p.get("state")}
                                   for p in message.get("participants", [])]
    return summary


async def _farm(conn: multiprocessing.connection.Connection, ws_url: str, panels: list[Panel]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopping = False
    by_type: collections.Counter[str] = collections.Counter()
    by_role: collections.Counter[str] = collections.Counter()

    def on_parent() -> None:
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        loop.remove_reader(conn.fileno())
        stop.set()

    loop.add_reader(conn.fileno(), on_parent)
    sockets: list[aiohttp.ClientWebSocketResponse | None] = [None] * len(panels)
    gate = asyncio.Semaphore(CONNECT_PARALLEL)

    async def connect(session: aiohttp.ClientSession, index: int) -> None:
        async with gate:
            socket = await session.ws_connect(ws_url, autoping=True, max_msg_size=0,
                                              timeout=aiohttp.ClientWSTimeout(ws_close=5))
            await socket.send_json({"type": "auth", "token": panels[index].token})  # as the page does
            hello = await socket.receive(timeout=30)
            if hello.type is not aiohttp.WSMsgType.TEXT or json.loads(hello.data).get("type") != "hello":
                await socket.close()
                raise RuntimeError(f"{panels[index].username}: no hello but {hello.type} {hello.data!r:.200}")
            sockets[index] = socket

    async def listen(index: int, socket: aiohttp.ClientWebSocketResponse) -> None:
        role = panels[index].role
        async for frame in socket:
            at = time.time()
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            # Only the watched frames are parsed: supervisors' panels get every agent-state change and wallboard
            # snapshot, and parsing those for 50 "browsers" in one process would delay the frames that are timed.
            found = _TYPE.search(frame.data, 0, 200)
            kind = found.group(1) if found else "?"
            if kind not in WATCHED and '"alarm_offer"' in frame.data:  # a card: its alarm's "type" comes first
                kind = str(json.loads(frame.data).get("type"))
            by_type[kind] += 1
            by_role[role] += 1
            if kind in WATCHED:
                conn.send(("frame", at, index, len(frame.data), _summary(json.loads(frame.data))))
        if not stopping:
            conn.send(("closed", index, socket.close_code))

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        results = await asyncio.gather(*(connect(session, i) for i in range(len(panels))), return_exceptions=True)
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        conn.send(("ready", sum(1 for s in sockets if s is not None), errors[:10],
                   round(time.monotonic() - started, 1)))
        listeners = [asyncio.create_task(listen(i, s)) for i, s in enumerate(sockets) if s is not None]
        await stop.wait()
        stopping = True
        await asyncio.gather(*(s.close() for s in sockets if s is not None), return_exceptions=True)
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    conn.send(("stats", dict(by_type), dict(by_role)))
    conn.close()
