"""A durable local journal: what the database could not take while it was down or stalled, kept on local disk and
replayed in order once it answers. Two domains keep one each: the call log (``calls``: AMI call events and SOS
intakes) and the alarm intake (``alarms``: device alarms acknowledged while the database was away).

In the call log: when SOS intake misses its deadline, or an AMI call event cannot be stored within its retries, the
work is not dropped: it is appended here — one JSON line, flushed and fsynced before the append returns — and
replayed, in order, through the same idempotent handlers as soon as the database answers again. Once anything is
waiting in the journal, every later call event goes behind it, so the call log still sees a call's events in
Asterisk's order. Replaying is at-least-once (an entry applied just before a crash is applied again), and every
handler is keyed by the call's linkedid or the channel's uniqueid (an SOS step by its time), so nothing is stored
twice; the alarm intake's by the device's message id.

Why a file of our own and not a queue library: it must work with nothing but the local disk (``make run`` has no
broker), survive SIGKILL between any two instructions, and be read in order by one process; a JSON-lines file
with a separately stored, atomically replaced read offset does exactly that in a few lines, and an operator can
read it with ``less``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob

log = get_logger(__name__)

Apply = Callable[[str, dict[str, Any]], Awaitable[None]]


class Journal:
    """``<directory>/journal.jsonl`` and its read offset; ``name`` tells two journals apart in the logs."""

    def __init__(self, directory: Path, name: str = "calls") -> None:
        self.name = name
        self._path = directory / "journal.jsonl"
        self._offset_path = directory / "journal.offset"
        self._lock = asyncio.Lock()
        self._backlog = 0
        self._replayer: PeriodicJob | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._backlog = len(self._unapplied(self._offset()))

    @property
    def backlog(self) -> int:
        """Entries written and not yet applied to the database."""
        return self._backlog

    async def append(self, kind: str, payload: dict[str, Any]) -> None:
        line = json.dumps({"kind": kind, "at": utcnow().isoformat(), "payload": payload}, ensure_ascii=False)
        async with self._lock:
            await asyncio.to_thread(self._write, line)
            self._backlog += 1
        log.error("journal.appended", journal=self.name, kind=kind, backlog=self._backlog,
                  linkedid=payload.get("Linkedid") or payload.get("linkedid"))

    def _write(self, line: str) -> None:
        # The journal holds callers' numbers and devices' messages: the platform's user only, whatever the umask.
        descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _repair(self) -> None:
        """A torn last line (killed in the middle of a write) is cut off: its append never returned, so nobody
        relied on it, and the next entry must start on a line of its own."""
        if not self._path.exists():
            return
        data = self._path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self._path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())
            log.error("journal.torn_entry_dropped", journal=self.name)

    def _offset(self) -> int:
        try:
            return int(self._offset_path.read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def _save_offset(self, offset: int) -> None:
        partial = self._offset_path.with_suffix(".partial")
        with partial.open("w") as handle:
            handle.write(str(offset))
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self._offset_path)

    def _unapplied(self, offset: int) -> list[tuple[int, dict[str, Any]]]:
        """(offset after the entry, entry) for every whole line after ``offset``."""
        if not self._path.exists():
            return []
        entries = []
        with self._path.open("rb") as handle:
            handle.seek(offset)
            for raw in handle:
                offset += len(raw)
                if not raw.endswith(b"\n"):
                    break
                with contextlib.suppress(ValueError):
                    entries.append((offset, json.loads(raw)))
        return entries

    async def replay(self, apply: Apply) -> int:
        """Apply every waiting entry in order; stops at the first that fails (its error is raised) and keeps it
        for the next try. Returns how many were applied."""
        applied = 0
        while True:
            async with self._lock:
                entries = await asyncio.to_thread(self._unapplied, self._offset())
                if not entries:
                    await asyncio.to_thread(self._compact)
                    self._backlog = 0
                    return applied
            for end, entry in entries:
                await apply(str(entry.get("kind")), dict(entry.get("payload") or {}))
                await asyncio.to_thread(self._save_offset, end)
                applied += 1
                self._backlog = max(0, self._backlog - 1)
            log.warning("journal.replayed", journal=self.name, applied=applied, backlog=self._backlog)

    def _compact(self) -> None:
        """Everything applied: start both files afresh (under the lock, so no append falls in between)."""
        if self._path.exists() and self._path.stat().st_size > 0:
            self._path.write_bytes(b"")
            self._save_offset(0)

    async def start(self, apply: Apply, *, interval: float = 1.0) -> None:
        self._replayer = PeriodicJob(f"journal-replay-{self.name}", functools.partial(self._replay_waiting, apply),
                                     first_run_seconds=0, interval_seconds=interval)
        await self._replayer.start()

    async def _replay_waiting(self, apply: Apply) -> None:
        if not self._backlog:
            return
        try:
            await self.replay(apply)
        except Exception as error:  # the database is still away: try again shortly
            log.warning("journal.replay_waiting", journal=self.name, backlog=self._backlog,
                        error=f"{type(error).__name__}: {str(error)[-200:]}")

    async def stop(self) -> None:
        if self._replayer is not None:
            await self._replayer.stop()
            self._replayer = None


class JournalProbe:
    """A journal (this module) on /healthz: entries written to local disk and not yet in the database. Not
    critical: a backlog means the database is behind, not that anything is lost."""

    def __init__(self, journal: Journal, check: str = "journal",
                 empty: str = "empty: the database has taken every call event") -> None:
        self._journal = journal
        self._check = check
        self._empty = empty

    async def health_checks(self) -> dict[str, Check]:
        backlog = self._journal.backlog
        detail = (self._empty if not backlog else
                  f"{backlog} entries wait for the database (kept on local disk, replayed in order when it answers)")
        return {self._check: Check(backlog == 0, detail, critical=False, facts={"backlog": backlog})}
