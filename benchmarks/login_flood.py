"""A log-in flood from a loopback address of its own, in a process of its own (benchmarks/sos_flood.py).

``connections`` concurrent clients from ``address`` (127.0.0.2 by default: the platform throttles per source
address, so the flood must not share the benchmark's own 127.0.0.1) send wrong-password log-ins back to back, each
with a username of its own, so no per-username lock-out ends the flood early; ``panel_connections`` of them post
the panel's ``/login`` form (CSRF token and nonce cookie from one ``GET /login``), the rest
``POST /api/v1/auth/login``. The same idea as ``LoginFlood`` in tests/integration/test_sos_faults.py, copied
rather than imported: a benchmark does not depend on a test module.

The clients run in a child process (its own interpreter and event loop), so the parent's threads (the AMI reader,
the sampler, SIPp's supervision) neither slow the flood down nor are slowed by it through the GIL, and the
flood's CPU is measured apart (``pid``). Bounded in requests and in time whatever the parent does; the parent
stops it earlier with ``stop()`` (or on leaving the ``with`` block) and gets the statistics back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import math
import multiprocessing
import multiprocessing.connection
import re
import time
from typing import Any

import aiohttp

FLOOD_ADDRESS = "127.0.0.2"
FLOOD_CONNECTIONS = 60
UNDER_WAY_TIMEOUT = 60.0
# After a connection error a client waits this long before its next request: a platform that is not listening
# must not turn the flood into a busy loop on the shared cores.
ERROR_PAUSE = 0.1
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclasses.dataclass(frozen=True)
class FloodPlan:
    base: str  # the platform's http://host:port, loopback only
    max_requests: int
    max_seconds: float
    connections: int = FLOOD_CONNECTIONS
    panel_connections: int = FLOOD_CONNECTIONS // 2
    address: str = FLOOD_ADDRESS

    def __post_init__(self) -> None:
        # Load goes to loopback addresses only, from a loopback address.
        for host in (self.address, self.base.split("//", 1)[-1].rsplit(":", 1)[0]):
            if not host.startswith("127."):
                raise ValueError(f"the log-in flood runs on loopback only (127.0.0.0/8), not {host!r}")
        if not 0 <= self.panel_connections <= self.connections:
            raise ValueError("panel_connections must be between 0 and connections")


@dataclasses.dataclass
class FloodStats:
    requests: int = 0  # answered or failed (requests in flight at the stop are waited for, and counted)
    seconds: float = 0.0  # from the first request sent to the last answer
    statuses: dict[str, int] = dataclasses.field(default_factory=dict)  # "api 429", "panel 401", "api ClientError"
    latency_ms: dict[str, float | None] = dataclasses.field(default_factory=dict)  # p50/p95/p99/max of answers
    ended_by: str = ""  # "stopped" (by the parent), "request bound", "time bound", or what went wrong
    panel_setup: str = ""  # "" or why the panel's form could not be fetched

    @property
    def rate(self) -> float:
        return round(self.requests / self.seconds, 1) if self.seconds > 0 else 0.0

    def by_status(self) -> dict[str, int]:
        """Answers by HTTP status (or error name), API and panel together."""
        totals: collections.Counter[str] = collections.Counter()
        for key, count in self.statuses.items():
            totals[key.split(" ", 1)[-1]] += count
        return dict(sorted(totals.items()))


class LoginFlood:
    """``with LoginFlood(plan) as flood``: on entry the flood is under way (as many answers back as it has
    clients); ``stop()`` ends it and returns the statistics (also left in ``stats``)."""

    def __init__(self, plan: FloodPlan) -> None:
        self.plan = plan
        self.stats: FloodStats | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    @property
    def running(self) -> bool:
        return self.stats is None and self._process is not None and self._process.is_alive()

    def __enter__(self) -> LoginFlood:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._conn = parent
        self._process = context.Process(target=_child, args=(child, self.plan), name="login-flood", daemon=True)
        self._process.start()
        child.close()
        if not parent.poll(UNDER_WAY_TIMEOUT):
            self.stop()
            raise RuntimeError(f"the log-in flood was not under way within {UNDER_WAY_TIMEOUT:.0f} s")
        try:
            message = parent.recv()
        except EOFError:  # the child died without a word (killed, or failed before its event loop ran)
            message = ("stats", None)
        if message[0] != "under_way":
            self._finish(message)
            self.stop()
            raise RuntimeError(f"the log-in flood ended before it was under way: {self.stats}")
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> FloodStats:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            # Requests in flight finish first (client timeout 30 s), then the child sends its statistics.
            message: Any = ("stats", None)
            with contextlib.suppress(EOFError, OSError):
                if self._conn.poll(45):
                    message = self._conn.recv()
            self._finish(message)
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            self._process = None
        return self.stats or FloodStats(ended_by="no statistics from the flood process")

    def _finish(self, message: Any) -> None:
        if message[0] == "stats" and message[1] is not None:
            self.stats = FloodStats(**message[1])
        elif self.stats is None:
            self.stats = FloodStats(ended_by=f"no statistics from the flood process ({message[0]})")
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- the child process ----------------------------------------------------------------------------------------------

def _child(conn: multiprocessing.connection.Connection, plan: FloodPlan) -> None:
    try:
        stats = asyncio.run(_flood(conn, plan))
    except Exception as error:  # the parent reports it; a traceback in a spawned child would be lost
        stats = FloodStats(ended_by=f"{type(error).__name__}: {error}")
    with contextlib.suppress(OSError):
        conn.send(("stats", dataclasses.asdict(stats)))
    conn.close()


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def rank(p: float) -> float | None:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1) if ordered else None

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": rank(100)}


async def _flood(conn: multiprocessing.connection.Connection, plan: FloodPlan) -> FloodStats:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_parent() -> None:
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        loop.remove_reader(conn.fileno())
        stop.set()

    loop.add_reader(conn.fileno(), on_parent)
    stats = FloodStats()
    statuses: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []  # at most max_requests entries
    sent = 0
    under_way = False
    deadline = time.monotonic() + plan.max_seconds
    first_sent: float | None = None
    last_answer = 0.0

    def more() -> bool:
        return not stop.is_set() and sent < plan.max_requests and time.monotonic() < deadline

    def answered(kind: str, status: int | str, started: float) -> None:
        nonlocal under_way, last_answer
        last_answer = time.monotonic()
        statuses[f"{kind} {status}"] += 1
        latencies.append((last_answer - started) * 1000)
        # Under way once as many answers are back as there are clients: the first refusals ("busy", "throttled")
        # come back at once while the opening burst's password checks still run, so the caller's measurements
        # start inside that burst (the only Argon2 work a flood from one address gets within a minute).
        if not under_way and len(latencies) >= plan.connections:
            under_way = True
            conn.send(("under_way",))

    async def client(session: aiohttp.ClientSession, index: int, csrf: str | None) -> None:
        nonlocal sent, first_sent
        panel = index < plan.panel_connections
        kind = "panel" if panel else "api"
        while more():
            sent += 1
            # A name of its own per request: the flood meets the per-address limit, never a per-username lock.
            username, password = f"flood-{index}-{sent}", "not-the-password"
            started = time.monotonic()
            first_sent = first_sent if first_sent is not None else started
            try:
                if panel:
                    form = {"csrf_token": csrf or "", "username": username, "password": password}
                    request = session.post(f"{plan.base}/login", data=form, allow_redirects=False)
                else:
                    body = {"username": username, "password": password}
                    request = session.post(f"{plan.base}/api/v1/auth/login", json=body)
                async with request as answer:
                    await answer.read()
                    answered(kind, answer.status, started)
            except (aiohttp.ClientError, TimeoutError) as error:
                answered(kind, type(error).__name__, started)
                await asyncio.sleep(ERROR_PAUSE)

    connector = aiohttp.TCPConnector(local_addr=(plan.address, 0), limit=plan.connections)
    # unsafe=True: aiohttp keeps no cookie from a host given as an IP address otherwise, and the panel's CSRF
    # token is bound to the nonce cookie of GET /login.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        csrf: str | None = None
        if plan.panel_connections:
            try:
                async with session.get(f"{plan.base}/login") as page:
                    found = _CSRF.search(await page.text())
                    csrf = found.group(1) if found else None
                    if csrf is None:
                        stats.panel_setup = f"GET /login {page.status}: no csrf_token in the form"
            except (aiohttp.ClientError, TimeoutError) as error:
                stats.panel_setup = f"GET /login: {type(error).__name__}: {error}"
        await asyncio.gather(*(client(session, i, csrf) for i in range(plan.connections)))
    stats.ended_by = ("stopped" if stop.is_set() else "request bound" if sent >= plan.max_requests
                      else "time bound")
    stats.requests = sum(statuses.values())
    stats.seconds = round(last_answer - first_sent, 2) if first_sent is not None else 0.0
    stats.statuses = dict(sorted(statuses.items()))
    stats.latency_ms = _percentiles(latencies)
    return stats
