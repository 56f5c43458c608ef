"""What ``callcenter retention run`` prints: a progress bar (plain lines when not on a terminal) and a summary."""

from __future__ import annotations

from typing import TextIO

from callcenter.progress import TerminalProgress
from callcenter.retention.engine import RetentionReport
from callcenter.retention.models import RetentionRule


class ProgressPrinter:
    """The engine's progress callback, one bar per rule (see ``callcenter.progress``)."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None) -> None:
        self._progress = TerminalProgress(stream, tty=tty)

    def __call__(self, rule: RetentionRule, done: int, total: int) -> None:
        self._progress.show(done, total, label=f"{rule.value:<18}", line=f"{rule.value}: {done}/{total}", key=rule)


COLUMNS = ("examined", "deleted", "archived", "held", "kept", "failed")


def format_summary(report: RetentionReport) -> str:
    lines = [f"retention run {report.run_id} at {report.now.isoformat()}"
             + (" (dry run: nothing was changed; the counts are what a run would do)" if report.dry_run else "")]
    lines.append(f"{'rule':<18} " + " ".join(f"{name:>9}" for name in COLUMNS))
    for rule, counts in report.rules.items():
        lines.append(f"{rule.value:<18} " + " ".join(f"{getattr(counts, name):>9}" for name in COLUMNS))
    reasons = [f"  {rule.value}: " + ", ".join(f"{reason} ({count})" for reason, count in sorted(why.items()))
               for rule, why in ((rule, counts.kept_because) for rule, counts in report.rules.items()) if why]
    if reasons:
        lines += ["kept because:", *reasons]
    if report.resumed:
        lines.append(f"finished {report.resumed} removal(s) an interrupted run had begun")
    if report.pending:
        lines.append(f"{report.pending} removal(s) an interrupted run began will be finished by the next run")
    if report.untagged:
        lines.append(f"{report.untagged} held recording(s) could not be marked held in their store (see the log)")
    if report.archives:
        lines.append("archive files:")
        lines += [f"  {file.path}  {file.calls} call(s)  sha256 {file.sha256}" for file in report.archives]
    return "\n".join(lines)
