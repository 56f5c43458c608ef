"""Progress of a long command-line job (``callcenter retention run``, ``callcenter elders import``): a bar redrawn
in place on a terminal; on a pipe or a log file, a plain line at every tenth so the log stays readable."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TextIO

BAR = 30


class TerminalProgress:
    def __init__(self, stream: TextIO, *, tty: bool | None = None) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._shown: dict[Hashable, int] = {}

    def show(self, done: int, total: int, *, label: str, line: str, key: Hashable = None) -> None:
        """``label`` leads the bar on a terminal; ``line`` is the plain line. ``key`` keeps separate tenths for
        separate parts of one job (retention's rules)."""
        if self._tty:
            filled = BAR * done // total if total else BAR
            self._stream.write(f"\r{label} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total}")
            if done >= total:
                self._stream.write("\n")
        else:
            tenth = 10 * done // total if total else 10
            if tenth <= self._shown.get(key, -1):
                return
            self._shown[key] = tenth
            self._stream.write(line + "\n")
        self._stream.flush()
