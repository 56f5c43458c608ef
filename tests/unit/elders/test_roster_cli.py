"""`callcenter elders import FILE [--dry-run] [--report PATH]` as an operator runs it."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from callcenter.db.session import Database
from callcenter.elders.console import ProgressPrinter
from callcenter.elders.models import Elder, RosterImport, RosterImportStatus
from tests.unit.elders.roster_data import roster


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", "elders", "import", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env}, check=False)


async def _elders(url: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Elder)) or 0)
    finally:
        await db.dispose()


async def test_dry_run_import_report_and_a_fatal_error(migrated_db_url: str, tmp_path: Path) -> None:
    env = {"CC_DATA_DIR": str(tmp_path / "data"), "CC_DATABASE_URL": migrated_db_url, "CC_LOG_LEVEL": "error"}
    data = roster(1_200)
    source = tmp_path / "花名册.csv"
    source.write_bytes(data.csv("gb18030"))
    good = 1_200 - len(data.bad)

    dry = _run([str(source), "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing was changed" in dry.stdout
    assert dry.stdout.splitlines()[2].split() == ["1200", str(good), "0", "0", str(len(data.bad))]
    assert await _elders(migrated_db_url) == 0

    result = _run([str(source)], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["rows", "created", "updated", "unchanged", "rejected"]
    assert lines[2].split() == ["1200", str(good), "0", "0", str(len(data.bad))]
    report = tmp_path / "花名册-rejected.csv"
    assert f"rejected rows with their reasons: {report}" in result.stdout
    rejected = list(csv.reader(io.StringIO(report.read_bytes().decode("utf-8-sig"))))
    assert [int(line[0]) for line in rejected[1:]] == sorted(data.bad)
    # not a terminal: plain progress lines, not a redrawn bar
    assert result.stderr.splitlines()[0] == "checked 0/1200 rows" and "\r" not in result.stderr
    assert result.stderr.splitlines()[-1] == "checked 1200/1200 rows"
    assert await _elders(migrated_db_url) == good

    elsewhere = tmp_path / "out" / "bad-rows.csv"
    elsewhere.parent.mkdir()
    again = _run([str(source), "--report", str(elsewhere)], env)
    assert again.returncode == 0 and again.stdout.splitlines()[2].split() == [
        "1200", "0", "0", str(good), str(len(data.bad))]
    assert elsewhere.read_bytes() == report.read_bytes()

    broken = tmp_path / "no-id.csv"
    broken.write_text("姓名,电话\n王某,17700000001\n", encoding="utf-8")
    failed = _run([str(broken)], env)
    assert failed.returncode == 1
    assert "failed, nothing was imported: required column missing: 身份证号" in failed.stdout
    missing = _run([str(tmp_path / "nowhere.csv")], env)
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    db = Database(migrated_db_url)
    try:
        async with db.transaction() as session:
            statuses = (await session.scalars(select(RosterImport.status).order_by(RosterImport.id))).all()
    finally:
        await db.dispose()
    assert statuses == [RosterImportStatus.DONE] * 3 + [RosterImportStatus.FAILED]


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    terminal = io.StringIO()
    bar = ProgressPrinter(terminal, tty=True)
    for done in (0, 500, 1000):
        bar(done, 1000)
    frames = terminal.getvalue().split("\r")[1:]
    assert frames[1] == "checking rows [" + "#" * 15 + "." * 15 + "] 500/1000"
    assert frames[-1] == "checking rows [" + "#" * 30 + "] 1000/1000\n"

    plain = io.StringIO()
    lines = ProgressPrinter(plain, tty=False)
    for done in range(0, 10_001, 500):
        lines(done, 10_000)
    printed = plain.getvalue().splitlines()
    assert printed[0] == "checked 0/10000 rows" and printed[-1] == "checked 10000/10000 rows"
    assert len(printed) == 11  # the start and every tenth


def test_help_names_the_columns_and_options() -> None:
    result = subprocess.run([sys.executable, "-m", "callcenter", "elders", "import", "--help"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage: callcenter elders import" in result.stdout
    assert "--dry-run" in result.stdout and "--report PATH" in result.stdout and "身份证号" in result.stdout
