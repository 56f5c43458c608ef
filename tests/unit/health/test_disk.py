"""The disk monitor on a real small filesystem (tmpfs): ok → low → full → ok, each change logged once and told to
listeners, health checks that say how much is free, and the CC_* settings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callcenter.config import ConfigError, Settings
from callcenter.health.disk import MB, DiskMonitor, Level, Watched, free_space
from tests import tmpfs


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs.mounted(tmp_path / "disk", size_kb=4096) as mounted:
        yield mounted


def _monitor(path: Path, *, min_free_mb: int = 2, repeat_seconds: float = 300.0) -> DiskMonitor:
    return DiskMonitor([Watched("spool", path, min_free_mb * MB, "the spool")], interval=3600,
                       repeat_seconds=repeat_seconds)


async def test_levels_follow_the_free_space_and_each_change_is_logged_and_told_once(disk: Path) -> None:
    monitor = _monitor(disk)
    changes: list[Level] = []
    monitor.on_change(lambda: changes.append(monitor.readings()["spool"].level))
    with capture_logs() as logs:
        assert (await monitor.refresh())["spool"].level is Level.OK  # 4 MB free, alarm below 2 MB
        tmpfs.fill(disk, leave_kb=1536)
        low = (await monitor.refresh())["spool"]
        await monitor.refresh()  # still low: neither logged nor told again
        tmpfs.fill(disk)
        full = (await monitor.refresh())["spool"]
        tmpfs.free(disk)
        ok = (await monitor.refresh())["spool"]
    assert (low.level, low.free_mb, low.min_free_mb) == (Level.LOW, 1, 2)
    assert (full.level, full.free_bytes) == (Level.FULL, 0)
    assert ok.level is Level.OK and ok.free_mb == 4
    assert low.since < full.since < ok.since
    assert changes == [Level.LOW, Level.FULL, Level.OK]
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert events == [("disk.low", "warning"), ("disk.full", "error"), ("disk.recovered", "info")]
    full_line = next(entry for entry in logs if entry["event"] == "disk.full")
    assert {key: full_line[key] for key in ("part", "path", "level", "free_mb", "min_free_mb")} == {
        "part": "spool", "path": str(disk), "level": "full", "free_mb": 0, "min_free_mb": 2}
    assert [alarm.part for alarm in monitor.alarms()] == []


async def test_an_alarm_that_lasts_is_logged_again_for_log_based_alerting(disk: Path) -> None:
    monitor = _monitor(disk, repeat_seconds=0)
    tmpfs.fill(disk)
    with capture_logs() as logs:
        for _ in range(3):
            await monitor.refresh()
    assert [entry["event"] for entry in logs] == ["disk.full"] * 3
    [alarm] = monitor.alarms()
    assert (alarm.part, alarm.level, alarm.free_mb, alarm.min_free_mb) == ("spool", Level.FULL, 0, 2)


async def test_a_disk_already_full_at_start_is_alarmed_at_once_and_health_says_how_much_is_free(disk: Path) -> None:
    tmpfs.fill(disk)
    monitor = _monitor(disk)
    told = asyncio.Event()
    monitor.on_change(told.set)
    await monitor.start()
    try:
        assert told.is_set()
        checks = await monitor.health_checks()
    finally:
        await monitor.stop()
    spool = checks["spool"]
    assert not spool.ok and not spool.critical
    assert dict(spool.facts) == {"level": "full", "free_mb": 0, "min_free_mb": 2, "path": str(disk)}
    assert "FULL" in spool.detail and "0 MB free" in spool.detail


async def test_an_async_listener_is_awaited_and_a_failing_one_does_not_stop_the_others(disk: Path) -> None:
    monitor = _monitor(disk)
    seen: list[str] = []

    def broken() -> None:
        raise RuntimeError("a listener bug")

    async def later() -> None:
        await asyncio.sleep(0)
        seen.append("async")

    monitor.on_change(broken)
    monitor.on_change(later)
    tmpfs.fill(disk)
    with capture_logs() as logs:
        await monitor.refresh()
    assert seen == ["async"]
    assert "disk.listener_failed" in [entry["event"] for entry in logs]


def test_a_path_not_made_yet_is_measured_on_the_filesystem_it_will_be_made_on(disk: Path) -> None:
    tmpfs.fill(disk, leave_kb=1024)
    free, total = free_space(disk / "spool" / "recordings")
    assert free == 1024 * 1024 and total == 4096 * 1024


def test_the_platform_watches_the_spool_the_local_store_and_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"CC_DATA_DIR": str(tmp_path / "data"), "CC_RECORDINGS_DIR": str(tmp_path / "rec"),
                                  "CC_SPOOL_MIN_FREE_MB": "100", "CC_RECORDINGS_MIN_FREE_MB": "200",
                                  "CC_DATA_MIN_FREE_MB": "300"})
    monitor = DiskMonitor.for_platform(settings, tmp_path / "spool")
    watched = {w.part: (w.path, w.min_free_bytes // MB) for w in monitor._watched}
    assert watched == {"spool": (tmp_path / "spool", 100), "storage": (tmp_path / "rec", 200),
                       "data": (tmp_path / "data", 300)}


async def test_with_recordings_in_s3_there_is_no_local_store_to_watch(tmp_path: Path) -> None:
    settings = Settings.from_env({"CC_DATA_DIR": str(tmp_path / "data"), "CC_RECORDING_STORAGE": "s3",
                                  "CC_S3_BUCKET": "recordings-test", "CC_SPOOL_MIN_FREE_MB": "1",
                                  "CC_DATA_MIN_FREE_MB": "1"})
    monitor = DiskMonitor.for_platform(settings, tmp_path / "spool")
    checks = await monitor.health_checks()
    assert list(checks) == ["spool", "storage", "data"]
    assert checks["storage"].ok and "s3" in checks["storage"].detail
    assert checks["spool"].ok and checks["data"].ok


def test_settings_have_sane_defaults_and_refuse_nonsense() -> None:
    defaults = Settings.from_env({})
    assert (defaults.spool_min_free_mb, defaults.recordings_min_free_mb, defaults.data_min_free_mb,
            defaults.disk_check_seconds) == (512, 512, 512, 15)
    chosen = Settings.from_env({"CC_SPOOL_MIN_FREE_MB": "2048", "CC_DISK_CHECK_SECONDS": "5"})
    assert (chosen.spool_min_free_mb, chosen.recordings_min_free_mb, chosen.disk_check_seconds) == (2048, 512, 5)
    for name, value in (("CC_SPOOL_MIN_FREE_MB", "lots"), ("CC_RECORDINGS_MIN_FREE_MB", "0"),
                        ("CC_DATA_MIN_FREE_MB", "-5"), ("CC_DISK_CHECK_SECONDS", "7200")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})
