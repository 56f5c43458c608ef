"""Free space of the disks recordings pass through: Asterisk's spool, the recordings store, the platform's data dir.

Why watch them: MixMonitor writes every SOS into the spool from its first second, and when that filesystem is
full Asterisk still answers and queues the elder but writes no audio (verified on Asterisk 22: it creates an empty
file and logs ``Bad write … No space left on device``). Nothing can bring back audio that was never written, so
the only honest help is to warn *before* the disk is full. Each watched disk has a threshold (``CC_*_MIN_FREE_MB``);
below it the disk is ``low``, below ``FULL_BYTES`` it is ``full``. Every change of level is a structured log line
(and again every ``REPEAT_SECONDS`` while it lasts, for log-based alerting), a degraded ``/healthz`` check and a
banner on the supervisors' wallboard (``on_change`` callbacks).

``statvfs`` runs in a worker thread under a deadline: a hung network mount must not stall the event loop, and a
disk whose previous measurement is still stuck is reported ``unknown`` instead of piling up threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from callcenter.config import Settings
from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob

log = get_logger(__name__)

MB = 1024 * 1024
# Below this a disk is full: one minute of an 8 kHz 16-bit call is ~0.94 MB, so less than this cannot hold one.
FULL_BYTES = MB
# While a disk stays low or full, its log line is repeated this often, so a log-based alert window always sees it.
REPEAT_SECONDS = 300.0
MEASURE_TIMEOUT = 5.0


class Level(enum.StrEnum):
    OK = "ok"
    LOW = "low"  # below its threshold: alarm now, while there is still room
    FULL = "full"  # below FULL_BYTES: writes fail
    UNKNOWN = "unknown"  # statvfs failed or did not answer in time


@dataclasses.dataclass(frozen=True, slots=True)
class Watched:
    part: str  # spool | storage | data
    path: Path
    min_free_bytes: int
    what: str  # for the health check's detail


@dataclasses.dataclass(frozen=True, slots=True)
class DiskReading:
    part: str
    path: Path
    level: Level
    since: dt.datetime  # when this level began
    free_bytes: int | None
    total_bytes: int | None
    min_free_bytes: int
    error: str | None = None

    @property
    def free_mb(self) -> int | None:
        return None if self.free_bytes is None else self.free_bytes // MB

    @property
    def min_free_mb(self) -> int:
        return self.min_free_bytes // MB


@dataclasses.dataclass(frozen=True, slots=True)
class DiskAlarm:
    """A disk that is not OK, as the wallboard shows it."""

    part: str
    level: Level
    since: dt.datetime
    free_mb: int | None
    min_free_mb: int


def free_space(path: Path) -> tuple[int, int]:
    """(bytes free to an unprivileged writer, total bytes) of the filesystem holding ``path``.

    ``f_bavail``, not ``f_bfree``: the blocks reserved for root are not counted, so the answer errs on the side of
    an early alarm. A path that does not exist yet (a spool before Asterisk's first start) is measured at its
    nearest existing parent, the filesystem it will be created on.
    """
    probe = path
    for _ in range(64):  # bounded: a path has fewer parts than this
        if probe.exists() or probe.parent == probe:
            break
        probe = probe.parent
    stat = os.statvfs(probe)
    return stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize


def level_of(free_bytes: int, min_free_bytes: int) -> Level:
    if free_bytes < FULL_BYTES:
        return Level.FULL
    if free_bytes < min_free_bytes:
        return Level.LOW
    return Level.OK


Listener = Callable[[], Awaitable[None] | None]


class DiskMonitor:
    """Measures each watched disk every ``interval`` seconds (and on every health check); tells listeners when a
    disk's level changes."""

    def __init__(self, watched: Sequence[Watched], *, interval: float = 15.0, timeout: float = MEASURE_TIMEOUT,
                 repeat_seconds: float = REPEAT_SECONDS, notes: Mapping[str, str] | None = None) -> None:
        self._watched = list(watched)
        self._timeout = timeout
        self._repeat = repeat_seconds
        # Parts that are deliberately not watched (recordings stored in S3), with the reason the health check says.
        self._notes = dict(notes or {})
        self._readings: dict[str, DiskReading] = {}
        self._logged_at: dict[str, float] = {}
        self._pending: dict[str, asyncio.Future[tuple[int, int]]] = {}  # a statvfs still running in its thread
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        self._job = PeriodicJob("disk-monitor", self.refresh, first_run_seconds=interval, interval_seconds=interval)

    @classmethod
    def for_platform(cls, settings: Settings, spool: Path) -> DiskMonitor:
        """The platform's disks with the thresholds and interval of ``settings`` (``CC_*_MIN_FREE_MB``,
        ``CC_DISK_CHECK_SECONDS``)."""
        watched = [Watched("spool", spool, settings.spool_min_free_mb * MB, "Asterisk's recordings spool"),
                   Watched("data", settings.data_dir, settings.data_min_free_mb * MB,
                           "the data dir (conversions, journal, CDR offset, SQLite)")]
        notes = {}
        if settings.recording_storage == "local":
            watched.insert(1, Watched("storage", settings.recordings_dir, settings.recordings_min_free_mb * MB,
                                      "the recordings store (CC_RECORDINGS_DIR)"))
        else:
            notes["storage"] = f"recordings are stored in {settings.recording_storage}: no local disk to watch"
        return cls(watched, interval=settings.disk_check_seconds, notes=notes)

    # -- wiring ------------------------------------------------------------------------------------------------
    def on_change(self, listener: Listener) -> None:
        """``listener()`` runs after any disk's level changed (it may be a coroutine function)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Measure now (a disk already full at start is alarmed at once), then every ``interval`` seconds."""
        await self.refresh()
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    # -- reading -----------------------------------------------------------------------------------------------
    def readings(self) -> dict[str, DiskReading]:
        return dict(self._readings)

    def alarms(self) -> list[DiskAlarm]:
        return [DiskAlarm(part=r.part, level=r.level, since=r.since, free_mb=r.free_mb, min_free_mb=r.min_free_mb)
                for r in self._readings.values() if r.level is not Level.OK]

    async def health_checks(self) -> dict[str, Check]:
        """A fresh measurement as health checks; none of them is SOS-critical (see docs/reliability.md)."""
        readings = await self.refresh()
        checks = {part: Check(True, note, critical=False) for part, note in self._notes.items()}
        for watched in self._watched:
            reading = readings[watched.part]
            checks[watched.part] = Check(reading.level is Level.OK, _detail(watched, reading), critical=False,
                                         facts={"level": reading.level.value, "free_mb": reading.free_mb,
                                                "min_free_mb": reading.min_free_mb, "path": str(watched.path)})
        return {part: checks[part] for part in ("spool", "storage", "data") if part in checks}

    # -- measuring ---------------------------------------------------------------------------------------------
    async def refresh(self) -> dict[str, DiskReading]:
        async with self._lock:
            changed = False
            for watched in self._watched:
                changed |= self._update(watched, await self._measure(watched))
            readings = dict(self._readings)
        if changed:
            await self._notify()
        return readings

    async def _measure(self, watched: Watched) -> tuple[int, int] | str:
        pending = self._pending.get(watched.part)
        if pending is not None and not pending.done():
            return "the previous measurement has not returned yet"
        future = asyncio.get_running_loop().run_in_executor(None, free_space, watched.path)
        self._pending[watched.part] = future
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            return f"statvfs did not answer within {self._timeout:.0f} s"
        except OSError as error:
            return f"{type(error).__name__}: {error.strerror or error}"

    def _update(self, watched: Watched, measured: tuple[int, int] | str) -> bool:
        now = utcnow()
        previous = self._readings.get(watched.part)
        if isinstance(measured, str):
            free = total = None
            level, error = Level.UNKNOWN, measured
        else:
            free, total = measured
            level, error = level_of(free, watched.min_free_bytes), None
        changed = previous is None or previous.level is not level
        since = now if changed or previous is None else previous.since
        reading = DiskReading(part=watched.part, path=watched.path, level=level, since=since, free_bytes=free,
                              total_bytes=total, min_free_bytes=watched.min_free_bytes, error=error)
        self._readings[watched.part] = reading
        self._log(reading, previous, changed)
        return changed and not (previous is None and level is Level.OK)

    def _log(self, reading: DiskReading, previous: DiskReading | None, changed: bool) -> None:
        clock = asyncio.get_running_loop().time()
        fields = {"part": reading.part, "path": str(reading.path), "level": reading.level.value,
                  "free_mb": reading.free_mb, "min_free_mb": reading.min_free_mb}
        if reading.level is Level.OK:
            if changed and previous is not None:
                log.info("disk.recovered", **fields, was=previous.level.value)
            self._logged_at.pop(reading.part, None)
            return
        last = self._logged_at.get(reading.part)
        if not changed and last is not None and clock - last < self._repeat:
            return
        self._logged_at[reading.part] = clock
        event = {Level.LOW: "disk.low", Level.FULL: "disk.full", Level.UNKNOWN: "disk.unknown"}[reading.level]
        if reading.level is Level.LOW:
            log.warning(event, **fields, since=reading.since.isoformat(), error=reading.error)
        else:
            log.error(event, **fields, since=reading.since.isoformat(), error=reading.error)

    async def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                result = listener()
                if result is not None:
                    await result
            except Exception:
                log.exception("disk.listener_failed")


def _detail(watched: Watched, reading: DiskReading) -> str:
    if reading.level is Level.UNKNOWN:
        return f"{watched.what}: free space unknown ({reading.error})"
    state = {Level.OK: "ok", Level.LOW: "low", Level.FULL: "FULL"}[reading.level]
    return f"{watched.what}: {state}, {reading.free_mb} MB free (alarm below {reading.min_free_mb} MB)"
