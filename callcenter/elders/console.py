"""What ``callcenter elders import`` prints: a progress bar (plain lines when not on a terminal) and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from callcenter.elders.roster import ImportResult
from callcenter.progress import TerminalProgress


class ProgressPrinter:
    """The import's progress callback (see ``callcenter.progress``)."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None) -> None:
        self._progress = TerminalProgress(stream, tty=tty)

    def __call__(self, done: int, total: int) -> None:
        self._progress.show(done, total, label="checking rows", line=f"checked {done}/{total} rows")


def report_path(source: Path) -> Path:
    """Where the rejected rows go by default: next to the file, ``<name>-rejected.csv``."""
    return source.with_name(f"{source.stem}-rejected.csv")


def format_summary(result: ImportResult, report: Path | None) -> str:
    if result.error is not None:
        return f"roster import {result.import_id} failed, nothing was imported: {result.error}"
    lines = [f"roster import {result.import_id}"
             + (" (dry run: nothing was changed; the counts are what an import would do)" if result.dry_run else "")]
    lines.append(f"{'rows':>9} {'created':>9} {'updated':>9} {'unchanged':>9} {'rejected':>9}")
    lines.append(f"{result.total:>9} {result.created:>9} {result.updated:>9} {result.unchanged:>9} "
                 f"{len(result.rejected):>9}")
    if result.ignored_columns:
        lines.append("columns not imported: " + ", ".join(result.ignored_columns))
    if report is not None:
        lines.append(f"rejected rows with their reasons: {report}")
    return "\n".join(lines)
