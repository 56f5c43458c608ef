"""What every benchmark does around its measurements: the process set-up, its command line, the machine it ran
on, the JSON results file under var/bench/ and the closing verdicts."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks.stack import BENCH_DIR
from callcenter.config import PROJECT_ROOT


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _raise_nofile() -> None:
    """Hundreds of calls and panels: open files for SIPp, Asterisk (started from here) and the platform."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def add_common_arguments(parser: argparse.ArgumentParser, module: str, quick: str) -> None:
    """--postgres, --quick (``quick`` says what it runs) and --output, the same in every benchmark."""
    parser.add_argument("--postgres", metavar="URL", help="run on a fresh database in this PostgreSQL server "
                                                          "instead of SQLite")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--output", type=Path, help=f"JSON results file (default var/bench/{module}-<time>.json)")


def start(module: str, argv: Sequence[str] | None) -> tuple[str, str]:
    """Raise the open-files limit and make SIGTERM stop the stack cleanly; the command line and the start time."""
    _raise_nofile()
    signal.signal(signal.SIGTERM, _terminate)
    arguments = argv if argv is not None else sys.argv[1:]
    return " ".join([f"python -m benchmarks.{module}", *map(shlex.quote, arguments)]), _now()


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())

    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        except OSError:
            return ""

    sipp = next((line.strip() for line in out(["sipp", "-v"]).splitlines() if "SIPp v" in line), "")
    return {"nproc": os.cpu_count(), "memory_gb": round(int(meminfo[1]) / 1024 / 1024, 1), "cpu": cpu,
            "kernel": platform.release(), "python": platform.python_version(), "sipp": sipp,
            "commit": out(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"]) or "(not a git checkout)"}


def header(command: str, started: str, args: argparse.Namespace, asterisk: str) -> dict[str, Any]:
    """The first keys of every results file: what ran, when, where, on which database, with which settings."""
    return {
        "command": command, "started": started, "finished": _now(),
        "machine": {**machine(), "asterisk": asterisk},
        "database": "postgresql" if getattr(args, "postgres", None) else "sqlite",
        "settings": {k: (v if not isinstance(v, Path) else str(v)) for k, v in vars(args).items() if k != "postgres"},
    }


def finish(module: str, result: dict[str, Any], output: Path | None) -> int:
    """Write the results file (default var/bench/<module>-<time>.json) and print the verdicts; the exit status."""
    output = output or BENCH_DIR / f"{module}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("\n[bench] verdicts:")
    for key, value in result["verdicts"].items():
        print(f"  {key}: {value}")
    print(f"[bench] results: {output}")
    return 0


def run(main: Callable[[], int]) -> None:
    """``if __name__ == "__main__"``: a benchmark reports and exits 0; Ctrl-C (or SIGTERM) exits 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The stack, SIPp and the Asterisk instance were stopped on the way out (finally blocks).
        print("\n[bench] interrupted: stack stopped, no results written", file=sys.stderr)
        sys.exit(130)
