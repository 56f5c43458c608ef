"""One SIPp load run: ``calls`` SOS presses at ``rate`` per second from the seeded devices (an injection file
gives each call its own device and password), each answered, held ``hold_ms`` and hung up.

Per call, SIPp's message trace (-trace_msg, microsecond timestamps) gives the time from the first send of the
authenticated INVITE to its 200 OK; its statistics file gives the attempted, successful and failed calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.stack import Credentials
from tests import harness

SCENARIO = Path(__file__).parent / "sipp" / "sos_load.xml"


@dataclasses.dataclass
class CallCounts:
    """What SIPp counted in one run: calls planned, attempted, completed and failed."""

    service: str
    rate: float
    planned: int
    attempted: int
    successful: int
    failed: int


@dataclasses.dataclass
class SippRun(CallCounts):
    returncode: int
    seconds: float
    answer_ms: list[float]
    errors: str  # the tail of SIPp's error log, for the report when calls failed


def write_injection(path: Path, credentials: Sequence[Credentials]) -> Path:
    """SIPp's -inf file: each call takes the next line, [field0] the device's user, [field1] its password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("SEQUENTIAL\n" + "".join(f"{c.user};{c.password};\n" for c in credentials), encoding="ascii")
    return path


class SippRunner:
    """Runs SIPp in the foreground of a child process; ``process`` is the running one (for sampling and clean-up)."""

    def __init__(self, stack: harness.Stack, injection: Path, workdir: Path) -> None:
        self.stack = stack
        self.injection = injection
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def run(self, service: str, *, rate: float, calls: int, hold_ms: int, limit: int,
            recv_timeout_ms: int = 10_000) -> SippRun:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tag = f"{service}-{rate:g}cps-{calls}-{time.strftime('%H%M%S')}"
        stats, errors = self.workdir / f"{tag}-stats.csv", self.workdir / f"{tag}-errors.log"
        messages = self.workdir / f"{tag}-messages.log"
        budget = calls / rate + hold_ms / 1000 + recv_timeout_ms / 1000 + 30
        argv = [
            "sipp", str(self.stack.settings.sip), "-sf", str(SCENARIO), "-s", service, "-inf", str(self.injection),
            "-i", "127.0.0.1", "-p", str(harness.free_udp_port()), "-mp", str(harness.free_sipp_media_port()),
            "-r", f"{rate:g}", "-rp", "1000", "-m", str(calls), "-l", str(limit),
            "-set", "hold_ms", str(hold_ms), "-recv_timeout", str(recv_timeout_ms),
            "-timeout", f"{int(budget)}s", "-nostdin",
            "-trace_err", "-error_file", str(errors), "-trace_msg", "-message_file", str(messages),
            "-trace_stat", "-stf", str(stats), "-fd", "1",
        ]
        started = time.monotonic()
        self.process = subprocess.Popen(argv, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, stderr = self.process.communicate(timeout=budget + 30)
        except subprocess.TimeoutExpired:
            self.stop()
            stderr = b"(SIPp overran its time budget and was killed)"
        returncode = self.process.returncode
        self.process = None
        seconds = time.monotonic() - started
        totals = _last_stats(stats)
        error_text = errors.read_text(errors="replace") if errors.exists() else ""
        return SippRun(
            service=service, rate=rate, planned=calls,
            attempted=totals.get("OutgoingCall(C)", 0), successful=totals.get("SuccessfulCall(C)", 0),
            failed=totals.get("FailedCall(C)", 0), returncode=returncode, seconds=round(seconds, 1),
            answer_ms=answer_times(messages),
            errors=(error_text[-1500:] + stderr.decode(errors="replace")[-500:]).strip(),
        )

    def stop(self) -> None:
        stop_sipp(self.process)


def stop_sipp(process: subprocess.Popen[bytes] | None) -> None:
    """End a running SIPp, if any: SIGINT lets it hang up its calls, then it is killed."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def _last_stats(path: Path) -> dict[str, int]:
    """The cumulative counters of the last line of SIPp's -trace_stat file."""
    if not path.exists():
        return {}
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    header, last = lines[0].split(";"), lines[-1].split(";")
    totals: dict[str, int] = {}
    for name, value in zip(header, last, strict=False):
        with contextlib.suppress(ValueError):
            totals[name] = int(value)
    return totals


TRACE_SEPARATOR = "-" * 47 + " "


def answer_times(path: Path) -> list[float]:
    """Milliseconds from the first send of each call's authenticated INVITE (CSeq 2) to its 200 OK."""
    if not path.exists():
        return []
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    with path.open(errors="replace") as trace:
        block: list[str] = []
        for line in [*trace, TRACE_SEPARATOR + "end"]:
            if not line.startswith(TRACE_SEPARATOR):
                block.append(line)
                continue
            if block:
                _note(block, sent, answered)
            block = [line]
    return [(answered[call] - sent[call]) * 1000 for call in answered if call in sent]


def _note(block: list[str], sent: dict[str, float], answered: dict[str, float]) -> None:
    """One traced message: its timestamp, direction, start line, Call-ID and CSeq."""
    if len(block) < 4:
        return
    try:
        at = dt.datetime.strptime(block[0][len(TRACE_SEPARATOR):].strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    except ValueError:
        return
    direction, start = block[1], block[3].strip()
    headers = {key.strip().lower(): value.strip() for key, sep, value in (line.partition(":") for line in block[4:])
               if sep}
    call, cseq = headers.get("call-id", ""), headers.get("cseq", "")
    if cseq != "2 INVITE" or not call:
        return
    if direction.startswith("UDP message sent") and start.startswith("INVITE "):
        sent.setdefault(call, at)
    elif direction.startswith("UDP message received") and start.startswith("SIP/2.0 200"):
        answered.setdefault(call, at)
