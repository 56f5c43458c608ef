"""A real SMPP 3.4 server (SMSC) for tests: ``tests/smpp_server.js`` on the npm package ``smpp`` (a devDependency in
package.json, installed by ``npm ci``: `make test` runs it), as a separate node process on a free loopback port.

The platform's SMPP channel binds to it over TCP exactly as to a carrier's SMSC; nothing in-process is patched. The
server prints one JSON line per thing it did (a bind, a submission with its decoded text, a receipt sent and
acknowledged); ``SmscEvents.wait`` waits for one of them, bounded in time. A server that does not come up is an
error, never a skip.
"""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.config import PROJECT_ROOT
from tests.harness import end_process

SCRIPT = Path(__file__).parent / "smpp_server.js"
SYSTEM_ID = "cc-test"
PASSWORD = "s3cret"
FAIL_SUFFIX = "0000"  # submit_sm refused (ESME_RSUBMITFAIL)
UNDELIV_SUFFIX = "4444"  # receipt stat:UNDELIV
LATER_SUFFIX = "9999"  # receipt held until another session binds
SECONDS_SUFFIX = "5555"  # receipt dates YYMMDDhhmmss

Event = dict[str, Any]


class SmscEvents:
    """What the server printed, in order; ``wait`` takes the first unseen event a predicate accepts (``next`` from a
    coroutine: the event loop keeps running, so the client under test can answer the server meanwhile)."""

    def __init__(self) -> None:
        self._lines: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []

    def put(self, event: Event) -> None:
        self._lines.put(event)

    def wait(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        for event in self.seen:
            if not event.get("_taken") and predicate(event):
                event["_taken"] = True
                return event
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the SMSC did not report the awaited event within {timeout} s; seen: "
                                   f"{self.seen[-10:]}")
            try:
                event = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if predicate(event):
                event["_taken"] = True
                return event


    async def next(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        return await asyncio.to_thread(self.wait, predicate, timeout)

    def about(self, kind: str, **fields: object) -> Callable[[Event], bool]:
        """A predicate: an event of ``kind`` whose fields have these values."""
        return lambda event: event.get("event") == kind and all(event.get(k) == v for k, v in fields.items())


class SmscServer:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.events = SmscEvents()
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed: the SMPP test server runs on node (make test installs it)")
        if not (PROJECT_ROOT / "node_modules" / "smpp").is_dir():
            raise RuntimeError("the npm package smpp is not installed: run `npm ci` (make test does)")
        config = {"system_id": SYSTEM_ID, "password": PASSWORD, "fail_suffix": FAIL_SUFFIX,
                  "undeliv_suffix": UNDELIV_SUFFIX, "later_suffix": LATER_SUFFIX, "seconds_suffix": SECONDS_SUFFIX}
        log = self.log_path.open("a")
        self._process = subprocess.Popen([node, str(SCRIPT), json.dumps(config)], cwd=PROJECT_ROOT,
                                         stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        log.close()
        self._reader = threading.Thread(target=self._read, name="smsc-stdout", daemon=True)
        self._reader.start()
        try:
            listening = self.events.wait(lambda event: event.get("event") == "listening", timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"the SMPP test server did not start: {self._log_tail()}") from None
        self.port = int(listening["port"])

    def _read(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "unreadable", "line": line[:200]})

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        end_process(process)
        if self._reader is not None:
            self._reader.join(5)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


@pytest.fixture(scope="session")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmscServer]:
    """One SMSC for the session; each test sends to numbers of its own."""
    server = SmscServer(tmp_path_factory.mktemp("smsc") / "smsc.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
