"""Real parts for tests: databases (SQLite, PostgreSQL), an Asterisk instance, the devices' Mosquitto, the platform
process, SIPp.

SIPp is the host's (Debian 12's 3.6, no TLS) for SIP over UDP, and the Asterisk root's (Debian sid's 3.8, built with
OpenSSL) for SIP over TLS, run with chroot on files staged in the instance's directory (``sipp(..., tls=...)``).

Nothing here skips: a missing Asterisk runtime, SIPp, Mosquitto or PostgreSQL is an error, so CI fails loudly.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from callcenter.asterisk.render import render
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import PROJECT_ROOT, Settings, normalise_database_url
from callcenter.db.keyring import Keyring, load_or_create
from callcenter.db.migrate import upgrade
from callcenter.db.session import Database
from callcenter.mosquitto.broker import MosquittoBroker
from callcenter.mosquitto.choice import platform_password, telemetry_password

SIPP_DIR = Path(__file__).parent / "sipp"
POSTGRES_ENV = "CC_TEST_POSTGRES_URL"
ADMIN_PASSWORD = "stack-admin-password"  # the platform bootstraps `admin` with it (CC_ADMIN_PASSWORD)


def backends() -> list[str]:
    """SQLite always; PostgreSQL too when CC_TEST_POSTGRES_URL is set (.ci/run sets it)."""
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


# Ports this test process has handed out. A port is free only until someone binds it, and the kernel may hand the
# same port to the next bind(port 0) once the probe socket is closed: a stack's HTTP and MQTT ports once came out
# equal, and the platform could not listen. Remembering the recent ones keeps the ports of one stack (and of the
# stacks one after another) apart; bounded, since a long session hands out thousands.
_handed_out: collections.deque[tuple[int, int]] = collections.deque(maxlen=512)


def _free_port(kind: socket.SocketKind, host: str) -> int:
    for _ in range(64):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if (kind, port) not in _handed_out:
            _handed_out.append((kind, port))
            return port
    raise RuntimeError("no free loopback port that this test process has not handed out already")


def free_tcp_port() -> int:
    return _free_port(socket.SOCK_STREAM, "127.0.0.1")


def free_udp_port(host: str = "127.0.0.1") -> int:
    return _free_port(socket.SOCK_DGRAM, host)


# Port ranges kept apart so the test processes never collide with each other or with the kernel's ephemeral ports
# (32768–60999 on Linux), which any socket bound to port 0 may take at any moment: SIPp's media ports below
# Asterisk's RTP ranges, both below the ephemeral range.
SIPP_MEDIA_PORTS = range(10000, 19996, 4)
ASTERISK_RTP_PORTS = range(20000, 32600, 100)


def free_sipp_media_port() -> int:
    """A base port for SIPp's ``-mp``: SIPp binds audio RTP/RTCP on it and +1, and video RTP/RTCP on +2 and +3,
    so all four must be free (an ephemeral base port checked alone once collided on its video port)."""
    for _ in range(200):
        base = random.choice(SIPP_MEDIA_PORTS)
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + 4):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError("no four consecutive free UDP ports for SIPp's media")


@contextlib.contextmanager
def database_url(backend: str, directory: Path) -> Iterator[str]:
    """A fresh, empty database of ``backend``; PostgreSQL ones are created and dropped around the test."""
    if backend == "sqlite":
        yield normalise_database_url(f"sqlite:///{directory / 'test.sqlite3'}")
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        raise RuntimeError(f"{POSTGRES_ENV} is not set but a PostgreSQL test was requested")
    name = f"cc_test_{secrets.token_hex(6)}"
    admin_url = normalise_database_url(base)
    _postgres_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _postgres_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_admin(url: str, statement: str) -> None:
    import asyncpg

    parsed = make_url(url)

    async def run() -> None:
        connection = await asyncpg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                                           user=parsed.username, password=parsed.password,
                                           database=parsed.database or "postgres")
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def run_async(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@contextlib.contextmanager
def sqlite_locked_by_another_process(url: str) -> Iterator[None]:
    """SQLite's write lock held the way another process (the CLI, a backup) holds it: a connection of its own,
    BEGIN IMMEDIATE, nothing written, until the block ends."""
    connection = sqlite3.connect(make_url(url).database or "", isolation_level=None, timeout=1)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


# Migrated once per test process and backend, then copied for each test that needs a migrated database: running the
# twenty-odd migrations took 1-2 s a database, for over a thousand databases a run. The migrations still run from
# nothing once per process and backend (here), and step by step on data in tests/unit/db.
_templates: dict[str, str] = {}
_templates_lock = threading.Lock()
_TEMPLATE_PREFIX = "cc_test_template_"


def migrated_database(url: str) -> None:
    """Bring ``url`` (a fresh, empty database from ``database_url``) to the head revision: a copy of this process's
    migrated template of its backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = Path(parsed.database or "")
        if not parsed.database or (target.exists() and target.stat().st_size > 0):
            upgrade(url)  # in memory, or not empty: migrate it where it is
            return
        template = _template("sqlite", _sqlite_template)
        source = sqlite3.connect(template)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # a consistent copy, WAL or not
        finally:
            copy.close()
            source.close()
        return
    base = os.environ.get(POSTGRES_ENV)
    shared = make_url(normalise_database_url(base)) if base else None
    if shared is None or (parsed.host, parsed.port) != (shared.host, shared.port):
        upgrade(url)  # another server (a test's own, behind a proxy): no template there
        return
    template = _template("postgresql", lambda: _postgres_template(url))
    name = parsed.database
    admin_url = parsed.set(database="postgres").render_as_string(hide_password=False)
    _postgres_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _postgres_admin(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def _template(backend: str, make: Any) -> str:
    with _templates_lock:
        if backend not in _templates:
            _templates[backend] = make()
        return _templates[backend]


def _sqlite_template() -> str:
    directory = Path(tempfile.mkdtemp(prefix="cc-test-template-"))
    path = directory / "template.sqlite3"
    upgrade(normalise_database_url(f"sqlite:///{path}"))
    atexit.register(shutil.rmtree, directory, True)
    return str(path)


def _postgres_template(like: str) -> str:
    parsed = make_url(like)
    name = f"{_TEMPLATE_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    admin_url = parsed.set(database="postgres").render_as_string(hide_password=False)
    _postgres_admin(admin_url, f'CREATE DATABASE "{name}"')
    atexit.register(_postgres_admin, admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    upgrade(parsed.set(database=name).render_as_string(hide_password=False))
    return name


@dataclasses.dataclass
class Stack:
    """A real Asterisk instance plus the platform process, on ports of their own."""

    settings: Settings
    env: dict[str, str]
    runtime: AsteriskRuntime
    mqtt: MosquittoBroker | None = None  # the platform-managed broker of the stack (start_mosquitto)
    platform: subprocess.Popen[bytes] | None = None
    platform_log: Path | None = None

    @property
    def http_base(self) -> str:
        return f"http://{self.settings.http.host}:{self.settings.http.port}"

    def keyring(self) -> Keyring:
        """The stack's data keys: the platform process's key file (whichever of the two makes it first)."""
        return load_or_create(self.settings.data_key_path, may_create=True)[0]

    def database(self) -> Database:
        return Database(self.settings.database_url, self.keyring())

    def query(self, coroutine_factory: Any) -> Any:
        """Run ``coroutine_factory(db)`` against the stack's database with a fresh engine."""

        async def run() -> Any:
            db = self.database()
            try:
                return await coroutine_factory(db)
            finally:
                await db.dispose()

        return asyncio.run(run())

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.http_base + path, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def api(self, method: str, path: str, body: object = None, token: str | None = None) -> tuple[int, Any]:
        """One REST call to the platform process: (status, decoded JSON body)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.http_base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        status, body = self.api("POST", "/api/v1/auth/login", {"username": username, "password": password})
        assert status == 200, body
        return str(body["token"])

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, body = self.get("/healthz")
                last = body
                if status == 200:
                    return dict(body)
            if self.platform is not None and self.platform.poll() is not None:
                raise RuntimeError(f"platform exited with {self.platform.returncode}: {self.platform_output()}")
            time.sleep(0.2)
        raise RuntimeError(f"platform not healthy after {timeout}s: {last}; log: {self.platform_output()}")

    def platform_output(self) -> str:
        if self.platform_log is None or not self.platform_log.exists():
            return ""
        return self.platform_log.read_text(errors="replace")[-5000:]

    def start_platform(self) -> None:
        assert self.platform is None
        self.platform_log = self.settings.data_dir / "platform.log"
        log = self.platform_log.open("ab")
        self.platform = subprocess.Popen([sys.executable, "-m", "callcenter", "serve"], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        log.close()

    def stop_platform(self) -> None:
        if self.platform is None:
            return
        self.platform.terminate()
        try:
            self.platform.wait(10)
        except subprocess.TimeoutExpired:
            self.platform.kill()
            self.platform.wait(5)
        self.platform = None

    def kill_platform(self) -> None:
        """SIGKILL, as a crash or the kernel's OOM killer would: no graceful stop, nothing flushed or closed."""
        assert self.platform is not None
        self.platform.kill()
        self.platform.wait(10)
        self.platform = None

    def render_and_reload(self) -> None:
        self.query(lambda db: render(self.settings, self.runtime, db))
        self.runtime.reload()


def stack_environment(data_dir: Path, database: str) -> dict[str, str]:
    rtp_start = random.choice(ASTERISK_RTP_PORTS)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CC_")},
        "CC_DATA_DIR": str(data_dir),
        "CC_DATABASE_URL": database,
        "CC_HTTP_PORT": str(free_tcp_port()),
        "CC_SIP_BIND": f"127.0.0.1:{free_udp_port()}",
        "CC_AMI_PORT": str(free_tcp_port()),
        "CC_AGI_PORT": str(free_tcp_port()),
        "CC_MQTT_BIND": f"127.0.0.1:{free_tcp_port()}",
        "CC_RTP_START": str(rtp_start),
        "CC_RTP_END": str(rtp_start + 99),
        "CC_ASTERISK_INSTANCE": f"test-{secrets.token_hex(4)}",
        "CC_RECORDINGS_DIR": str(data_dir / "recordings"),
        "CC_LOG_LEVEL": "info",
        "CC_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # The shortest answer target the platform accepts, so overflow tests run in seconds.
        "CC_SOS_ANSWER_TIMEOUT": "5",
        # Longer than the longest silent hold of a SIPp device in the tests (25 s), short enough to test it.
        "CC_DEVICE_RTP_TIMEOUT": "30",
        # 120, doctors and relatives are dialled through this trunk; tests answer it with a SIPp UAS (trunk_phone).
        "CC_TRUNK_URI": f"sip:127.0.0.1:{free_udp_port()}",
        # SIPp answering phones take one scripted call; a qualify OPTIONS would be an unexpected one.
        "CC_SIP_QUALIFY_SECONDS": "0",
        "CC_SOS_OVERFLOW_TIMEOUT": "10",
        # Recordings are collected when a call ends; the rescan that retries and catches the rest, every 2 s.
        "CC_RECORDING_SCAN_SECONDS": "2",
        # No wrap-up between calls, so tests can give one agent calls back to back (test_agents turns it on).
        "CC_WRAPUP_SECONDS": "0",
        # The outbound engine's calls (cascades, care calls) give up on an unanswered phone after the shortest
        # ring the platform accepts, so a responder who never answers costs a test 10 s, not 30.
        "CC_OUTBOUND_RING_SECONDS": "10",
        # Tests run at any hour of the day: care calls are not held to the centre's night (the quiet hours are
        # tested against a clock of the test's choosing: tests/unit/outbound).
        "CC_OUTBOUND_QUIET_HOURS": "none",
        # Abandoned SOS calls (several tests make them) do not start the seeded elder's contact cascade: its calls
        # would reach the trunk's SIPp of a later test. The hook is tested in tests/unit/cascades.
        "CC_CASCADE_ON_ABANDONED_SOS": "off",
        **({"CC_ASTERISK_ROOT": os.environ["CC_ASTERISK_ROOT"]} if "CC_ASTERISK_ROOT" in os.environ else {}),
    }


def require_tools() -> None:
    """The real parts integration tests need; their absence is an error, never a skip."""
    if shutil.which("sipp") is None:
        raise RuntimeError("SIPp is not installed (Debian package sip-tester): run `make test`, which installs it")


def start_asterisk(settings: Settings) -> AsteriskRuntime:
    runtime = AsteriskRuntime.for_settings(settings)
    if not runtime.is_installed():
        raise RuntimeError("the Asterisk runtime is not installed: `callcenter asterisk install` (make test does it)")
    return runtime


def start_mosquitto(settings: Settings) -> MosquittoBroker:
    """The stack's platform-managed broker, rendered and started as `callcenter mqtt start` does."""
    from tests.mqtt import require_mosquitto

    require_mosquitto()
    broker = MosquittoBroker.for_settings(settings)
    broker.render(platform_password(settings), telemetry_password(settings))
    broker.start()
    return broker


def remove_instance(runtime: AsteriskRuntime) -> None:
    with contextlib.suppress(Exception):
        runtime.stop()
    shutil.rmtree(runtime.host_path(runtime.instance_dir), ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class SippResult:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def eventually(probe: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``probe()`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def ami_action(stack: Stack, action: Mapping[str, str], timeout: float = 10.0) -> list[dict[str, str]]:
    """One AMI action on a session of its own (the platform's AMI user), as a monitoring tool would send it: the
    response and, for a list action, its events up to the list's end, every message as a dict."""
    from callcenter.asterisk.render import ami_credentials

    credentials = ami_credentials(stack.settings)
    action_id = secrets.token_hex(6)
    lines = [f"Action: Login\r\nUsername: {credentials.username}\r\nSecret: {credentials.secret}\r\n"
             "Events: off\r\nActionID: login\r\n\r\n",
             "".join(f"{key}: {value}\r\n" for key, value in {**action, "ActionID": action_id}.items()) + "\r\n"]
    found: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    with socket.create_connection((stack.settings.ami.host, stack.settings.ami.port), timeout=timeout) as sock:
        sock.sendall("".join(lines).encode())
        buffer = b""
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            *raw_messages, buffer = buffer.split(b"\r\n\r\n")
            for raw in raw_messages:
                message = dict(line.split(": ", 1) for line in raw.decode(errors="replace").splitlines()
                               if ": " in line)
                if message.get("ActionID") != action_id:
                    continue
                found.append(message)
                if message.get("EventList") == "Complete" or (
                        "Response" in message and message.get("EventList") != "start"):
                    return found
    raise AssertionError(f"no complete answer to AMI {action.get('Action')} within {timeout}s: {found}")


def add_queue_member(stack: Stack, queue: str, extension: str, name: str) -> None:
    """Put a phone in a queue directly on the Asterisk CLI (test set-up; agents use the API)."""
    stack.runtime.cli(f"queue add member PJSIP/{extension} to {queue} penalty 0 as {name} "
                      f"state_interface PJSIP/{extension}")


def set_paused(stack: Stack, extension: str, paused: bool) -> None:
    verb = "pause" if paused else "unpause"
    output = stack.runtime.cli(f"queue {verb} member PJSIP/{extension}") or ""
    assert "paused" in output.lower(), output


def dtmf_scenario(workdir: Path, digits: str, *, gap_ms: int = 1500) -> str:
    """A copy of call.xml that presses ``digits`` after the answer, as SIP INFO (application/dtmf-relay), then
    stays ``hold_ms`` (a -set variable) before hanging up.

    SIP INFO rather than replaying SIPp's RFC 4733 sample captures: every sample carries the same RTP timestamp,
    so Asterisk rightly takes a second press as a retransmission of the first.
    """
    presses = "".join(
        f"""  <pause milliseconds="{gap_ms}"/>
  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {10 + index} INFO
      [routes]
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={digit}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
"""
        for index, digit in enumerate(digits)
    )
    text = (SIPP_DIR / "call.xml").read_text()
    start = text.index("  <!-- The elder's side of the audio")
    end = text.index("  <nop><action><todouble")
    text = text[:start] + presses + text[end:]
    text = text.replace("CSeq: 3 BYE", f"CSeq: {10 + len(digits)} BYE")
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"dtmf-{digits.replace('*', 's').replace('#', 'p')}-{secrets.token_hex(3)}"
    (workdir / f"{name}.xml").write_text(text.replace('<scenario name="call">', f'<scenario name="{name}">'))
    return str(workdir / name)


def remove_queue_member(stack: Stack, queue: str, extension: str) -> None:
    stack.runtime.cli(f"queue remove member PJSIP/{extension} from {queue}", check=False)


class Phone:
    """A registered SIP phone that answers calls: a SIPp REGISTER from a port, then a SIPp UAS on that port."""

    def __init__(self, stack: Stack, user: str, password: str, workdir: Path) -> None:
        self.stack = stack
        self.user = user
        self.password = password
        self.workdir = workdir
        self.port = free_udp_port()
        self._uas: subprocess.Popen[bytes] | None = None
        self._errors: Path | None = None

    def register(self, expires: int = 300) -> None:
        result = sipp(self.stack, "register", service=self.user, auth_user=self.user, password=self.password,
                      variables={"expires": str(expires)}, workdir=self.workdir, local_port=self.port)
        assert result.ok, f"{self.user} could not register: {result.output}"

    def answer(self, scenario: str = "answer_until_bye", *, ring_ms: int = 300, talk_ms: int = 2000,
               timeout: float = 60.0) -> None:
        """Start answering the next call in the background."""
        require_tools()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._errors = self.workdir / f"{self.user}-{scenario}-{secrets.token_hex(3)}-errors.log"
        argv = ["sipp", "-sf", str(SIPP_DIR / f"{scenario}.xml"), "-i", "127.0.0.1", "-p", str(self.port),
                "-mp", str(free_sipp_media_port()), "-m", "1", "-timeout", f"{int(timeout)}s", "-nostdin",
                "-trace_err", "-error_file", str(self._errors), "-set", "ring_ms", str(ring_ms)]
        if scenario == "answer":
            argv += ["-set", "talk_ms", str(talk_ms)]
        self._uas = subprocess.Popen(argv, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def is_running(self) -> bool:
        """The answering SIPp is still in its call (or waiting for one)."""
        return self._uas is not None and self._uas.poll() is None

    @property
    def pid(self) -> int | None:
        """The answering SIPp's process id while it runs (benchmarks sample its CPU)."""
        return self._uas.pid if self.is_running() else None  # type: ignore[union-attr]

    def wait(self, timeout: float = 60.0) -> SippResult:
        """Wait for the answered call to finish; ok only if the scenario completed."""
        assert self._uas is not None, "answer() first"
        try:
            _, stderr = self._uas.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._uas.kill()
            _, stderr = self._uas.communicate()
        output = self._errors.read_text(errors="replace") if self._errors and self._errors.exists() else ""
        result = SippResult(self._uas.returncode, output + stderr.decode(errors="replace")[-2000:])
        self._uas = None
        return result

    def stop(self) -> None:
        if self._uas is not None and self._uas.poll() is None:
            self._uas.kill()
            self._uas.wait()
        self._uas = None


def sos_answered_by_agent(stack: Stack, workdir: Path, *, hold_ms: int = 5000, ring_ms: int = 500,
                          before_call: Any = None) -> None:
    """The seeded device presses the red button; the seeded agent's phone, put in the emergency queue, answers;
    the elder hangs up after ``hold_ms``. ``before_call`` runs once the agent is ready (e.g. stop the platform)."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    agent = Phone(stack, seeded.agent_extension, seeded.agent_password, workdir)
    agent.register()
    add_queue_member(stack, "emergency", seeded.agent_extension, "agent-test")
    try:
        agent.answer("answer_until_bye", ring_ms=ring_ms)
        if before_call is not None:
            before_call()
        result = sipp(stack, "call", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
                      variables={"user": seeded.device_user, "hold_ms": str(hold_ms)}, workdir=workdir)
        assert result.ok, result.output
        assert agent.wait(20).ok
    finally:
        agent.stop()
        remove_queue_member(stack, "emergency", seeded.agent_extension)


def trunk_phone(stack: Stack, workdir: Path) -> Phone:
    """The far end of the SIP trunk (120, a doctor, a relative): answers whatever number is dialled."""
    phone = Phone(stack, "trunk", "", workdir)
    phone.port = int(stack.settings.trunk_uri.rsplit(":", 1)[1])
    return phone


@dataclasses.dataclass(frozen=True)
class SippTls:
    """SIP over TLS for one SIPp run (``-t l1``). SIPp loads a certificate and key of its own whatever it does
    (it presents them only to a server that asks; Asterisk does not), and with ``-tls_ca`` verifies the server's
    chain against ``trusted``, dropping a connection that fails (it does not check the name or address)."""

    cert: Path
    key: Path
    trusted: Path


def tls_sipp_command(runtime: AsteriskRuntime) -> list[str]:
    """A SIPp that speaks TLS. Debian 12's SIPp (the host's ``sipp``) is built without it; the Asterisk root holds
    Debian sid's, built with OpenSSL (SID_PACKAGES), run with chroot: it sees only files inside the root. With an
    Asterisk on PATH and no root, the host's SIPp, if it has TLS."""
    if runtime.root is not None:
        if not runtime.host_path("/usr/bin/sipp").exists():
            raise RuntimeError(f"the Asterisk root {runtime.root} has no SIPp (sip-tester): run "
                               "`callcenter asterisk install` (make test does it), which adds it to an existing root")
        return ["chroot", str(runtime.root), "sipp"]
    version = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10, check=False).stdout
    if "-TLS" not in version:
        raise RuntimeError(f"the host's SIPp has no TLS ({version.strip().splitlines()[0] if version.strip() else '?'})"
                           ": install a SIPp built with OpenSSL (sip-tester >= 3.7)")
    return ["sipp"]


def sipp(stack: Stack, scenario: str, *, service: str, auth_user: str, password: str,
         variables: Mapping[str, str] | None = None, timeout: float = 20.0, workdir: Path,
         local_port: int | None = None, local_ip: str = "127.0.0.1", tls: SippTls | None = None,
         message_log: Path | None = None) -> SippResult:
    """Run one SIPp user agent call of ``scenario`` against the stack's SIP port; returns its exit code and log.
    ``local_ip``: the source address (any of 127.0.0.0/8 reaches the stack on loopback). ``tls``: over TLS to the
    stack's TLS transport (CC_SIP_TLS_*) instead of UDP, with the TLS SIPp (tls_sipp_command). ``message_log``:
    every SIP message sent and received is written there."""
    require_tools()
    workdir.mkdir(parents=True, exist_ok=True)
    scenario_file = Path(f"{scenario}.xml") if scenario.startswith("/") else SIPP_DIR / f"{scenario}.xml"
    run = f"{scenario_file.stem}-{secrets.token_hex(3)}"
    errors = workdir / f"{run}-errors.log"
    if tls is None:  # the host's SIPp reads and writes the host's files
        command, target, transport = ["sipp"], str(stack.settings.sip), []
        port, staged = local_port or free_udp_port(local_ip), None
        scenario_seen, errors_seen, messages_seen = scenario_file, errors, message_log
    else:
        assert stack.settings.sip_tls is not None, "the stack has no TLS transport (CC_SIP_TLS_CERT/KEY)"
        command, target = tls_sipp_command(stack.runtime), str(stack.settings.sip_tls)
        port = local_port or free_tcp_port()
        # What SIPp reads and writes, staged in the instance's directory (inside the root when it is chrooted, so
        # a run cut short is removed with the instance); its logs are copied back to ``workdir``.
        inner = stack.runtime.instance_dir / "sipp" / run
        staged = stack.runtime.host_path(inner)
        staged.mkdir(parents=True)
        for source, name in ((scenario_file, scenario_file.name), (tls.cert, "sipp.crt"), (tls.key, "sipp.key"),
                             (tls.trusted, "trusted.crt")):
            shutil.copyfile(source, staged / name)
        transport = ["-t", "l1", "-tls_cert", str(inner / "sipp.crt"), "-tls_key", str(inner / "sipp.key"),
                     "-tls_ca", str(inner / "trusted.crt")]
        scenario_seen, errors_seen = inner / scenario_file.name, inner / errors.name
        messages_seen = inner / "messages.log" if message_log else None
    argv = [
        *command, target, "-sf", str(scenario_seen), "-s", service,
        "-au", auth_user, "-ap", password, "-i", local_ip, "-p", str(port),
        "-mp", str(free_sipp_media_port()), "-m", "1", "-timeout", f"{int(timeout)}s", "-nostdin",
        "-trace_err", "-error_file", str(errors_seen), *transport,
        *(["-trace_msg", "-message_file", str(messages_seen)] if messages_seen else []),
    ]
    for name, value in (variables or {}).items():
        argv += ["-set", name, value]
    try:
        process = subprocess.run(argv, capture_output=True, cwd=workdir, timeout=timeout + 10, check=False)
    finally:
        if staged is not None:
            for seen, log in ((errors_seen, errors), (messages_seen, message_log)):
                if seen is not None and log is not None and (staged / seen.name).exists():
                    shutil.copyfile(staged / seen.name, log)
            shutil.rmtree(staged, ignore_errors=True)
    output = errors.read_text(errors="replace") if errors.exists() else ""
    return SippResult(process.returncode, output + process.stderr.decode(errors="replace")[-2000:])


class TrunkByNumber(Phone):
    """The far end of the SIP trunk taking several concurrent calls in one SIPp UAS (sipp/trunk_by_number.xml):
    ``reject_number`` is declined (603), every other number answered; each INVITE's number and caller ID is logged."""

    def __init__(self, stack: Stack, workdir: Path) -> None:
        super().__init__(stack, "trunk", "", workdir)
        self.port = int(stack.settings.trunk_uri.rsplit(":", 1)[1])
        self._log = workdir / f"trunk-{secrets.token_hex(3)}-invites.log"

    def answer_calls(self, calls: int, *, reject_number: str, ring_ms: int = 500, timeout: float = 90.0) -> None:
        """Start taking ``calls`` calls, concurrently, in the background; ``wait()`` returns once all have ended."""
        self._start("trunk_by_number", calls, timeout, ring_ms=ring_ms, reject_number=reject_number)

    def _start(self, scenario: str, calls: int, timeout: float, **variables: object) -> None:
        require_tools()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._errors = self.workdir / f"{scenario}-{secrets.token_hex(3)}-errors.log"
        argv = ["sipp", "-sf", str(SIPP_DIR / f"{scenario}.xml"), "-i", "127.0.0.1", "-p", str(self.port),
                "-mp", str(free_sipp_media_port()), "-m", str(calls), "-timeout", f"{int(timeout)}s", "-nostdin",
                "-trace_err", "-error_file", str(self._errors), "-trace_logs", "-log_file", str(self._log)]
        for name, value in variables.items():
            argv += ["-set", name, str(value)]
        self._uas = subprocess.Popen(argv, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def errors(self) -> str:
        """What SIPp reported so far (unexpected messages, aborted calls)."""
        return self._errors.read_text(errors="replace") if self._errors and self._errors.exists() else ""

    def invites(self) -> list[tuple[str, str]]:
        """(dialled number, caller ID number) of every INVITE received so far, in arrival order."""
        if not self._log.exists():
            return []
        found = []
        for line in self._log.read_text(errors="replace").splitlines():
            if "INVITE dialled=" in line:
                fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
                found.append((fields["dialled"], fields["caller"]))
        return found


class TrunkResponders(TrunkByNumber):
    """The people the outbound engine calls (sipp/trunk_responders.xml): by the dialled number's last digit, 9 never
    answers, 1 and 2 answer and press that key (RFC 2833) after ``listen_ms``."""

    def answer_calls(self, calls: int, *, reject_number: str = "", ring_ms: int = 300, timeout: float = 90.0,
                     listen_ms: int = 2000) -> None:
        """Take ``calls`` calls in the background (``reject_number`` and ``ring_ms`` play no part here)."""
        self._start("trunk_responders", calls, timeout, listen_ms=listen_ms)


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb into a temporary directory, a free port), so a test can stop
    and start it for real without touching the machine's shared server. Runs as the ``postgres`` user, as
    PostgreSQL refuses to run as root."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql (apt: postgresql)")
        self.bin = bins[-1].parent
        self.root = Path(tempfile.mkdtemp(prefix="cc-test-pg-"))
        self.data = self.root / "data"
        self.port = free_tcp_port()
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8")

    def _as_postgres(self, *argv: str, timeout: float = 60.0) -> None:
        result = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True,
                                timeout=timeout, check=False, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {result.stdout[-1000:]} {result.stderr[-1000:]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                          str(self.root / "server.log"), "-w", "-t", "30", "start")

    def stop(self) -> None:
        """A fast shutdown: every client connection is cut, as when an operator stops the service."""
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def create_database(self, name: str = "callcenter") -> None:
        _postgres_admin(f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres", f'CREATE DATABASE "{name}"')

    def url(self, port: int | None = None, name: str = "callcenter") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port or self.port}/{name}"

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class StallableProxy:
    """A TCP proxy on loopback in front of a server; ``stall()`` stops it forwarding in both directions without
    closing anything (a hung server or a black-holed network path), ``resume()`` lets the bytes through again."""

    MAX_STALL_SECONDS = 300.0  # a stall is bounded: past it the proxy forwards again

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_tcp_port()
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()  # used on the proxy's own loop only
        self._flowing.set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop).result(10)

    def stall(self) -> None:
        asyncio.run_coroutine_threadsafe(self._set_flowing(False), self._loop).result(5)

    def resume(self) -> None:
        asyncio.run_coroutine_threadsafe(self._set_flowing(True), self._loop).result(5)

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pump(client_reader, server_writer), self._pump(server_reader, client_writer),
                             return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flowing.wait(), self.MAX_STALL_SECONDS)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self.resume()
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def enable_dialplan_timings(stack: Stack) -> None:
    """Asterisk logs every dialplan step with its time into ``log/timings.log`` from now on (a logger channel added
    at run time, test-only; lost when Asterisk restarts, so call it again after one)."""
    stack.runtime.cli("logger add channel timings.log verbose")


_TIMED_STEP = re.compile(r"^\[(?P<at>[0-9-]+ [0-9:.]+)\].*Executing \[s@cc-sos:\d+\] "
                         r"(?P<app>\w+)\(\"(?P<channel>[^\"]+)\"")


def sos_answer_to_queue_seconds(stack: Stack, device_user: str) -> float:
    """On Asterisk's own clock, for the newest SOS of ``device_user``: from ``Answer()`` in ``cc-sos`` (the elder
    hears the centre) to ``Queue(emergency)`` (the agents' phones may ring). Needs enable_dialplan_timings()."""
    log = stack.runtime.host_path(stack.runtime.instance_dir / "log" / "timings.log").read_text(errors="replace")
    answered: dict[str, dt.datetime] = {}
    last: float | None = None
    for line in log.splitlines():
        match = _TIMED_STEP.match(line)
        if match is None or f"PJSIP/{device_user}-" not in match["channel"]:
            continue
        at = dt.datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S.%f")
        if match["app"] == "Answer":
            answered[match["channel"]] = at
        elif match["app"] == "Queue" and match["channel"] in answered:
            last = (at - answered.pop(match["channel"])).total_seconds()
    if last is None:
        raise AssertionError(f"no SOS of {device_user} went from Answer to Queue in {stack.runtime.instance_dir}")
    return last


def record_reliability(test: str, answer_to_queue: float, *, measure: str = "answer_to_queue_seconds") -> None:
    """Keep a fault test's measured answer→queue time (or another ``measure``, in seconds) as a test artifact
    (var/test-artifacts/reliability.json), the figures docs/reliability.md quotes."""
    path = PROJECT_ROOT / "var" / "test-artifacts" / "reliability.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[test] = {measure: round(answer_to_queue, 3), "at": dt.datetime.now(dt.UTC).isoformat()}
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


def end_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Terminate a server process the tests started, killing it if it does not end within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
