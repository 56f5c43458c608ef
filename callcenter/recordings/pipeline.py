"""From MixMonitor's spool to stored, registered recordings — without ever losing one.

Each finished ``<serial>.wav`` in the spool goes through: wait until MixMonitor has closed it → measure (pydub)
→ compress to Opus in Ogg (~88 KB a minute, plays in browsers) → store atomically under
``<YYYY>/<MM>/<DD>/<serial>.ogg`` → register a ``Recording`` row → only then delete the spool WAV.

Guarantees:

* The spool WAV is deleted only after the row is committed and the stored object's size and SHA-256 match it,
  and only if the WAV is unchanged (size, mtime) since it was read.
* Every step is idempotent: the storage key depends only on the serial (and, for a serial without a time, the
  WAV's mtime), ``put`` replaces, and the row is found by its unique serial. A crash anywhere and a rerun
  finish the job with one row and one stored object.
* A file that fails (cannot be decoded, encoded, stored, registered) stays in the spool, is logged with its
  serial and linkedid, and is retried on the next scan.
* A full disk (the store's, or the data dir's where conversions are written) is such a failure: the WAV stays,
  the rest of that scan waits instead of converting in vain, and the next scan (or ``scan_soon``, which the disk
  monitor calls when a disk's level changes) tries again, so the recording is kept as soon as space returns.
* A recording whose audio could never be written (MixMonitor's file has no WAV header: the spool was full, which
  Asterisk survives by answering and queueing the call unrecorded) is not silently absent: it is logged as
  ``recording.missing`` and flagged on the trail of every work order of its call (``recording_missing``); so is a
  call that ended with a recording serial but whose file never appeared.

Two paths feed it: the call-ended hook (the file is usually ready within a second or two) and a periodic scan
of the spool (once at start, then every ``CC_RECORDING_SCAN_SECONDS``), which retries failures and picks up
calls that ended while the platform was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import enum
import errno
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydub import AudioSegment

from callcenter.calls.models import Call
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob
from callcenter.recordings import services
from callcenter.recordings.formats import AUDIO_FORMAT, EXTENSION, OPUS_BITRATE, OPUS_PARAMETERS
from callcenter.recordings.models import Recording
from callcenter.recordings.services import StoredRecording
from callcenter.recordings.storage import RecordingStore

log = get_logger(__name__)

_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConversionError(RuntimeError):
    pass


class SpoolFileChanged(RuntimeError):
    pass


class Outcome(enum.StrEnum):
    STORED = "stored"  # converted, stored, registered, spool file removed
    CLEANED = "cleaned"  # it was already stored and registered: only the spool file was left to remove
    WAITING = "waiting"  # not finished yet (call in progress, still being written)
    BUSY = "busy"  # another task is on it right now
    FAILED = "failed"  # logged; the file stays for the next scan
    SKIPPED = "skipped"  # not a recording the pipeline handles (name), left alone
    KEPT = "kept"  # its row says it was deleted (retention): left for a person to decide
    MISSING = "missing"  # no audio was ever written (full spool): flagged on the call's orders, empty file removed


# MixMonitor writes the 44-byte WAV header first: a file shorter than that holds no audio at all.
WAV_HEADER_BYTES = 44
# "No space left on device" and "disk quota exceeded": the write may succeed once space returns.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_no_space(error: BaseException) -> bool:
    """The failure, or one it was raised from, is a write refused for want of space."""
    seen: BaseException | None = error
    for _ in range(8):  # bounded: a cause chain is short
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in _NO_SPACE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class _FileState:
    size: int
    mtime: float

    @classmethod
    def of(cls, path: Path) -> _FileState:
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime)


def transcode(source: Path, target: Path) -> float:
    """Decode the WAV, write Opus-in-Ogg to ``target``, check it decodes to the same length; the duration in s."""
    try:
        audio = AudioSegment.from_file(source, format="wav")
    except Exception as error:
        raise ConversionError(f"cannot decode {source.name}: {_tail(error)}") from error
    duration = audio.duration_seconds
    try:
        with target.open("wb") as out:
            audio.export(out, format="ogg", codec="libopus", bitrate=OPUS_BITRATE, parameters=OPUS_PARAMETERS)
            out.flush()
            os.fsync(out.fileno())
        # A call hung up at once leaves a WAV without audio: its Ogg holds headers only and does not decode.
        decoded = AudioSegment.from_file(target, format="ogg").duration_seconds if duration else 0.0
    except Exception as error:
        raise ConversionError(f"cannot encode {source.name}: {_tail(error)}") from error
    if abs(decoded - duration) > max(0.5, duration * 0.02):
        raise ConversionError(f"{source.name}: encoded {decoded:.2f} s from {duration:.2f} s of audio")
    return duration


def _tail(error: Exception) -> str:
    """ffmpeg's complaint is at the end of pydub's message, after its version banner."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-400:] or type(error).__name__


def wav_duration(path: Path) -> float:
    return AudioSegment.from_file(path, format="wav").duration_seconds


def storage_key(serial: str, recorded_at: dt.datetime) -> str:
    return f"{recorded_at:%Y/%m/%d}/{serial}.{EXTENSION}"


class RecordingPipeline:
    def __init__(self, db: Database, store: RecordingStore, spool: Path, workdir: Path, *, retention_days: int,
                 scan_seconds: float = 30.0, settle_seconds: float = 1.0, orphan_quiet_seconds: float = 600.0,
                 ended_wait_seconds: float = 30.0, missing_quiet_seconds: float = 10.0,
                 max_conversions: int | None = None) -> None:
        self._db = db
        self._store = store
        self.spool = spool
        self._workdir = workdir
        self._retention_days = retention_days
        self._scan_seconds = scan_seconds
        # MixMonitor closes the file asynchronously after the hangup: unchanged this long means closed.
        self._settle = settle_seconds
        # A file whose call is unknown or never seen to end (platform or Asterisk down) is taken once it has
        # been untouched this long: a live call's file grows 50 times a second.
        self._orphan_quiet = orphan_quiet_seconds
        self._ended_wait = ended_wait_seconds
        # A file without audio is declared missing only once it has been left alone this long after its call:
        # MixMonitor may still be closing it.
        self._missing_quiet = missing_quiet_seconds
        slots = max_conversions or max(1, min(2, os.cpu_count() or 1))
        self._slots = asyncio.Semaphore(slots)
        # Conversions run on threads of their own at a lower CPU priority, inherited by the ffmpeg they start:
        # compressing a finished call can wait a moment, answering an SOS cannot (each conversion costs ~0.2 s of
        # CPU; at 20 calls/s they would otherwise take the cores Asterisk and the event loop need).
        self._converter = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="recording-convert",
                                             initializer=_lower_priority)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._scanner: PeriodicJob | None = None
        self._skipped: set[str] = set()
        # The step ("convert", "store") that found no space since the last scan began: the files after it (and the
        # call-ended hook's meanwhile) wait for the next scan instead of each spending a conversion on a write that
        # will fail too.
        self._no_space: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_workdir)
        self._scanner = PeriodicJob("recordings-scan", self._scan_round, first_run_seconds=0,
                                    interval_seconds=self._scan_seconds)
        await self._scanner.start()

    async def stop(self) -> None:
        if self._scanner is not None:
            await self._scanner.stop()
            self._scanner = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._converter.shutdown(wait=False, cancel_futures=True)

    async def call_ended(self, call: Call) -> None:
        """The call-ended hook: collect its recording in the background (the AMI event loop must not wait)."""
        if not call.recording_serial:
            return
        task = asyncio.create_task(self._collect_after_call(call.recording_serial, call.linkedid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _collect_after_call(self, serial: str, linkedid: str) -> None:
        path = self.spool / f"{serial}.wav"
        deadline = time.monotonic() + self._ended_wait
        seen = False
        while time.monotonic() < deadline:
            state = await asyncio.to_thread(_state_or_none, path)
            seen |= state is not None
            if state is not None and time.time() - state.mtime >= self._settle:
                await self.process(path)
                return
            await asyncio.sleep(0.5)
        if seen:
            log.info("recording.left_for_scan", serial=serial, linkedid=linkedid, reason="not settled after the call")
            return
        if serial in self._busy:  # the same call told twice (a reconciled call): one of them looks
            return
        self._busy.add(serial)
        try:
            await self._flag_never_written(path, serial, linkedid)
        finally:
            self._busy.discard(serial)

    async def _flag_never_written(self, path: Path, serial: str, linkedid: str) -> None:
        # MixMonitor was started (the serial is only stamped after it) but no file ever appeared: the spool could
        # not even create it. Unless the other path already collected it, say so rather than let it be absent.
        try:
            async with self._db.transaction() as session:
                call = await services.call_for_serial(session, serial)
                recording = await services.recording_by_serial(session, serial)
            if recording is None and not await asyncio.to_thread(path.exists):
                await self._flag_missing(serial, linkedid, call.id if call is not None else None, "no file written")
        except Exception as error:
            log.error("recording.failed", serial=serial, linkedid=linkedid, step="flag_missing",
                      error=str(error)[-500:], error_type=type(error).__name__)

    def scan_soon(self) -> None:
        """Scan now rather than at the next interval (a disk has space again)."""
        if self._scanner is not None:
            self._scanner.run_soon()

    async def _scan_round(self) -> None:
        try:
            await self.scan()
        except Exception:
            log.exception("recording.scan_failed", spool=str(self.spool))

    def _prepare_workdir(self) -> None:
        """Conversions interrupted by a crash leave half-written files here; they are only ever redone. The
        contents go, not the directory: it may be a mount point of its own."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        for entry in list(self._workdir.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)

    # -- the work ----------------------------------------------------------------------------------------------

    async def scan(self) -> dict[str, Outcome]:
        """Process every WAV in the spool; returns each serial's outcome."""
        paths = await asyncio.to_thread(self._spool_files)
        self._no_space = None  # every scan tries again: space may have come back
        lanes = asyncio.Semaphore(4)  # a backlog after an outage must not take every database connection at once

        async def one(path: Path) -> Outcome:
            async with lanes:
                return await self.process(path)

        outcomes = await asyncio.gather(*(one(path) for path in paths))
        return {path.stem: outcome for path, outcome in zip(paths, outcomes, strict=True)}

    def _spool_files(self) -> list[Path]:
        if not self.spool.is_dir():
            return []
        return sorted(path for path in self.spool.glob("*.wav") if path.is_file())

    async def process(self, path: Path) -> Outcome:
        serial = path.stem
        if not _SERIAL.match(serial):
            if serial not in self._skipped:
                self._skipped.add(serial)
                log.warning("recording.unexpected_file", file=str(path))
            return Outcome.SKIPPED
        if serial in self._busy:
            return Outcome.BUSY
        self._busy.add(serial)
        linkedid: str | None = None
        step = "inspect"
        work: Path | None = None
        try:
            state = await asyncio.to_thread(_state_or_none, path)
            if state is None:  # collected by the other path meanwhile
                return Outcome.CLEANED
            async with self._db.transaction() as session:
                call = await services.call_for_serial(session, serial)
                recording = await services.recording_by_serial(session, serial)
            linkedid = call.linkedid if call is not None else None
            if recording is not None and recording.deleted_at is not None:
                log.warning("recording.spool_file_of_deleted_recording", serial=serial, linkedid=linkedid,
                            recording_id=recording.id)
                return Outcome.KEPT
            if recording is not None and await self._is_stored(recording) and await self._same_audio(path, recording):
                step = "remove_spool_file"
                await self._remove_spool_file(path, state)
                log.info("recording.spool_cleaned", serial=serial, linkedid=linkedid, recording_id=recording.id)
                return Outcome.CLEANED
            waiting = self._not_ready(state, call)
            if waiting is not None:
                log.debug("recording.waiting", serial=serial, linkedid=linkedid, reason=waiting)
                return Outcome.WAITING
            if state.size < WAV_HEADER_BYTES and recording is None:
                if time.time() - state.mtime < self._missing_quiet:
                    return Outcome.WAITING
                step = "flag_missing"
                await self._flag_missing(serial, linkedid, call.id if call is not None else None,
                                         "no audio written (the spool was full or unwritable)", size=state.size)
                step = "remove_spool_file"
                await self._remove_spool_file(path, state)
                return Outcome.MISSING
            async with self._slots:
                # Checked once a conversion slot is ours: the files queued behind the one that found no space wait.
                if self._no_space is not None:
                    log.debug("recording.waiting", serial=serial, linkedid=linkedid,
                              reason=f"no space ({self._no_space})")
                    return Outcome.WAITING
                step = "convert"
                work = self._workdir / f"{serial}.{EXTENSION}"
                await asyncio.to_thread(self._workdir.mkdir, parents=True, exist_ok=True)
                duration = await asyncio.get_running_loop().run_in_executor(self._converter, transcode, path, work)
                if await asyncio.to_thread(_FileState.of, path) != state:
                    log.warning("recording.changed_while_converting", serial=serial, linkedid=linkedid)
                    return Outcome.WAITING
                step = "store"
                key = recording.storage_key if recording is not None else storage_key(
                    serial, services.parse_serial(serial).started_at or dt.datetime.fromtimestamp(state.mtime, dt.UTC))
                stored = await self._store.put(key, work)
                await asyncio.to_thread(work.unlink, missing_ok=True)
                step = "verify"
                if await self._store.digest(key) != stored.sha256:
                    raise ConversionError(f"stored object {key} does not read back as written")
            step = "register"
            row = await self._register(StoredRecording(
                serial=serial, call_id=call.id if call is not None else None, backend=self._store.backend, key=key,
                audio_format=AUDIO_FORMAT, duration_seconds=round(duration, 3), size_bytes=stored.size_bytes,
                sha256=stored.sha256,
            ))
            step = "remove_spool_file"
            await self._remove_spool_file(path, state)
            log.info("recording.stored", serial=serial, linkedid=linkedid, recording_id=row.id, key=key,
                     duration_seconds=round(duration, 1), size_bytes=stored.size_bytes,
                     kb_per_minute=round(stored.size_bytes / 1024 / max(duration / 60, 1 / 60), 1))
            return Outcome.STORED
        except Exception as error:
            no_space = is_no_space(error)
            if no_space and step in ("convert", "store"):
                self._no_space = step
            if work is not None:  # a half-written conversion must not hold space on a full disk until the retry
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(work.unlink, missing_ok=True)
            log.error("recording.failed", serial=serial, linkedid=linkedid, step=step, error=str(error)[-500:],
                      error_type=type(error).__name__, file=str(path), no_space=no_space)
            return Outcome.FAILED
        finally:
            self._busy.discard(serial)

    def _not_ready(self, state: _FileState, call: Call | None) -> str | None:
        quiet = time.time() - state.mtime
        if quiet < self._settle:
            return "being written"
        if call is not None and call.ended_at is not None:
            return None
        if quiet >= self._orphan_quiet:
            return None
        return "call not ended" if call is not None else "no call seen yet"

    async def _is_stored(self, recording: Recording) -> bool:
        """The row's object is in the store, whole (size and SHA-256 as registered)."""
        if recording.storage_backend != self._store.backend:
            return False
        size = await self._store.size(recording.storage_key)
        if size is None or size != recording.size_bytes:
            return False
        return await self._store.digest(recording.storage_key) == recording.sha256

    async def _same_audio(self, path: Path, recording: Recording) -> bool:
        """The WAV is the audio that was stored (not one that grew afterwards), by its length."""
        try:
            duration = await asyncio.to_thread(wav_duration, path)
        except Exception:
            return False
        return recording.duration_seconds is not None and abs(duration - recording.duration_seconds) <= 0.2

    async def _flag_missing(self, serial: str, linkedid: str | None, call_id: int | None, reason: str,
                            size: int | None = None) -> None:
        orders: list[int] = []
        if call_id is not None:
            async with self._db.transaction() as session:
                orders = await services.flag_missing(session, call_id=call_id, serial=serial, reason=reason)
        log.error("recording.missing", serial=serial, linkedid=linkedid, call_id=call_id, work_orders=orders,
                  reason=reason, size_bytes=size)

    async def _register(self, stored: StoredRecording) -> Recording:
        async with self._db.transaction() as session:
            return await services.register(session, stored, retention_days=self._retention_days, now=utcnow())

    async def _remove_spool_file(self, path: Path, state: _FileState) -> None:
        """The last step, after the row is committed: and never if the WAV changed since it was read."""
        if await asyncio.to_thread(_state_or_none, path) != state:
            raise SpoolFileChanged("the spool file changed after it was read; kept, and redone on the next scan")
        await asyncio.to_thread(path.unlink, missing_ok=True)


CONVERT_NICE = 10


def _lower_priority() -> None:
    """On Linux the nice value is per thread (setpriority with who=0), and a child process inherits it."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, CONVERT_NICE)


def _state_or_none(path: Path) -> _FileState | None:
    try:
        return _FileState.of(path)
    except FileNotFoundError:
        return None
