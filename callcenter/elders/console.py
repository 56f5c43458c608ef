"""What ``callcenter elders import`` prints: a progress bar (plain lines when not on a terminal) and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from callcenter.elders.roster import ImportResult

BAR = 30


class ProgressPrinter:
    """The import's progress callback: a bar redrawn in place on a terminal, else a line at every tenth."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        if self._tty:
            filled = BAR * done // total if total else BAR
            self._stream.write(f"\rchecking rows [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total}")
            if done >= total:
                self._stream.write("\n")
        else:
            tenth = 10 * done // total if total else 10
            if tenth <= self._shown:
                return
            self._shown = tenth
            self._stream.write(f"checked {done}/{total} rows\n")
        self._stream.flush()


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
