"""`callcenter retention run [--dry-run]` as an operator runs it: progress, summary, exit status."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

from callcenter.calls.models import Call
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.recordings.models import Recording
from callcenter.recordings.storage import LocalRecordingStore
from callcenter.retention.models import RetentionRule
from callcenter.retention.report import ProgressPrinter
from tests.unit.retention.rig import Rig


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, check=False)


async def test_dry_run_then_run_print_progress_and_a_summary(migrated_db_url: str, tmp_path: Path) -> None:
    env = {"CC_DATA_DIR": str(tmp_path / "data"), "CC_RECORDINGS_DIR": str(tmp_path / "recordings"),
           "CC_DATABASE_URL": migrated_db_url, "CC_LOG_LEVEL": "error"}
    db = Database(migrated_db_url)
    rig = Rig(db, LocalRecordingStore(tmp_path / "recordings"), tmp_path)
    now = utcnow()  # the command runs on the real clock: the data is placed around it
    try:
        old_call = await rig.call(ended=now - dt.timedelta(days=1200))
        kept_call = await rig.call(ended=now - dt.timedelta(days=1000))
        expired = await rig.recording(created=now - dt.timedelta(days=93), call_id=kept_call)
        young = await rig.recording(created=now - dt.timedelta(days=91), expires=now - dt.timedelta(days=1))

        dry = _run(["retention", "run", "--dry-run"], env)
        assert dry.returncode == 0, dry.stderr
        assert "dry run: nothing was changed" in dry.stdout
        assert await rig.get(Call, old_call) is not None and await rig.stored(expired)

        result = _run(["retention", "run"], env)
        assert result.returncode == 0, result.stderr
    finally:
        await db.dispose()
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["rule", "examined", "deleted", "archived", "held", "kept", "failed"]
    assert lines[2].split() == ["recording.expired", "2", "1", "0", "0", "1", "0"]
    assert lines[3].split() == ["call_log.archive", "1", "0", "1", "0", "0", "0"]
    assert "recording.expired: younger than the 92-day floor (1)" in result.stdout
    assert "archive files:" in result.stdout and "1 call(s)  sha256 " in result.stdout
    assert dry.stdout.splitlines()[1:4] == lines[1:4]  # the dry run said what the run did
    # not a terminal: plain progress lines, not a redrawn bar
    assert "recording.expired: 2/2" in result.stderr.splitlines() and "\r" not in result.stderr
    async with Database(migrated_db_url).transaction() as session:
        assert await session.get(Call, old_call) is None
        assert (await session.get(Recording, expired)).deleted_at is not None
        assert (await session.get(Recording, young)).deleted_at is None
    assert len(list((tmp_path / "data" / "archive").glob("call-log-*.jsonl.gz"))) == 1


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    terminal = io.StringIO()
    bar = ProgressPrinter(terminal, tty=True)
    for done in range(1, 5):
        bar(RetentionRule.RECORDING_EXPIRED, done, 4)
    frames = terminal.getvalue().split("\r")[1:]
    assert frames[1] == "recording.expired  [" + "#" * 15 + "." * 15 + "] 2/4"
    assert frames[-1] == "recording.expired  [" + "#" * 30 + "] 4/4\n"

    plain = io.StringIO()
    lines = ProgressPrinter(plain, tty=False)
    for done in range(1, 1001):
        lines(RetentionRule.CALL_LOG_PURGE, done, 1000)
    printed = plain.getvalue().splitlines()
    assert printed[0] == "call_log.purge: 1/1000" and printed[-1] == "call_log.purge: 1000/1000"
    assert len(printed) == 11  # the start and every tenth
