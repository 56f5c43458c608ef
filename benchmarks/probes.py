"""What the machine is doing while calls run: resident memory and CPU of the platform, Asterisk and SIPp (from
/proc, no psutil), Asterisk's active channels, the load average. Sampled once a second in a thread."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from callcenter.asterisk.runtime import AsteriskRuntime

TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | None) -> float | None:
    """Resident set size (VmRSS) in MiB, or None when the process is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int | None, *, children: bool = False) -> float | None:
    """User + system CPU time the process has used so far; ``children``: that of its children that have ended
    (the platform's ffmpeg runs, which compress recordings)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        first = 13 if children else 11
        return (int(fields[first]) + int(fields[first + 1])) / TICKS
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def active_channels(runtime: AsteriskRuntime) -> int | None:
    output = runtime.cli("core show channels count", timeout=5, check=False) or ""
    match = re.search(r"(\d+) active channels?", output)
    return int(match.group(1)) if match else None


@dataclasses.dataclass
class Peaks:
    """The highest values seen while sampling, and mean CPU use (percent of one core) per process."""

    samples: int = 0
    platform_rss_mb: float = 0.0
    asterisk_rss_mb: float = 0.0
    channels: int = 0
    # The platform's RSS while the most channels were up (a hold's plateau), apart from its peak: ending hundreds of
    # calls at once raises RSS by tens of MB for a moment (thread pools, SQLite's caches), and that peak swings by
    # 13-20 MB between runs of the same code (docs/performance.md, issue 13).
    platform_rss_mb_most_channels: float = 0.0
    load1: float = 0.0
    recordings: int = 0  # most recording files in the spool at once that were not there when sampling began
    cpu_percent: dict[str, float] = dataclasses.field(default_factory=dict)


class Sampler:
    """Samples every ``interval`` seconds until stopped; ``pids`` is asked afresh each time (SIPp comes and goes)."""

    def __init__(self, runtime: AsteriskRuntime, pids: Callable[[], dict[str, int | None]],
                 recordings: Callable[[], set[str]], interval: float = 1.0) -> None:
        self._runtime = runtime
        self._pids = pids
        self._recordings = recordings
        self._recordings_before: set[str] = set()
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peaks = Peaks()
        self._cpu_start: dict[str, tuple[float, float]] = {}
        self._cpu_last: dict[str, tuple[float, float]] = {}

    def __enter__(self) -> Sampler:
        self._stop.clear()
        self._recordings_before = self._recordings()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        cpu = self.peaks.cpu_percent
        for name, (started_cpu, started_at) in self._cpu_start.items():
            last_cpu, last_at = self._cpu_last[name]
            if last_at > started_at:
                cpu[name] = round(100 * (last_cpu - started_cpu) / (last_at - started_at), 1)
        if "machine" in cpu:
            # Whatever else ran meanwhile (other people's tests on a shared machine) shows here.
            cpu["other"] = round(max(0.0, cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine")), 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.sample()
            self._stop.wait(self._interval)

    def sample(self) -> None:
        pids = self._pids()
        now = time.monotonic()
        peaks = self.peaks
        peaks.samples += 1
        platform_rss = rss_mb(pids.get("platform")) or 0.0
        peaks.platform_rss_mb = max(peaks.platform_rss_mb, platform_rss)
        peaks.asterisk_rss_mb = max(peaks.asterisk_rss_mb, rss_mb(pids.get("asterisk")) or 0.0)
        peaks.load1 = max(peaks.load1, os.getloadavg()[0])
        counted = [(name, pid, False) for name, pid in pids.items()]
        if pids.get("platform") is not None:
            counted.append(("platform children", pids["platform"], True))
        for name, pid, children in counted:
            used = machine_busy_seconds() if name == "machine" else cpu_seconds(pid, children=children)
            if used is None:
                continue
            if name not in self._cpu_start:
                self._cpu_start[name] = (used, now)
            self._cpu_last[name] = (used, now)
        # Files of earlier runs that the recording pipeline removes meanwhile must not hide this run's new ones.
        peaks.recordings = max(peaks.recordings, len(self._recordings() - self._recordings_before))
        channels = active_channels(self._runtime)
        if channels is not None:
            if channels > peaks.channels:
                peaks.platform_rss_mb_most_channels = platform_rss
            elif channels == peaks.channels:
                peaks.platform_rss_mb_most_channels = max(peaks.platform_rss_mb_most_channels, platform_rss)
            peaks.channels = max(peaks.channels, channels)
