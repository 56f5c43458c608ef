"""Care-call campaigns (issue 16's performance targets): `make bench`, or
`.venv/bin/python -m benchmarks.care_campaign --help`.

1. A campaign. ``--calls`` elders living alone, each with a phone behind the SIP trunk, get a daily check-in
   through the real path: one "enable for all living alone" (the supervisors' API call) with a window from now to
   ``--window-seconds`` later, then the care-call planner makes today's care records and outbound jobs, and the
   outbound engine dials them within its care-call cap (``--concurrency``, CC_OUTBOUND_CONCURRENCY) and channel
   budget. One SIPp UAS is every elder (tests/sipp/trunk_responders.xml): by the number's last digit it answers and
   presses 1 after ``--listen-ms`` (most), presses 2 (``--call-back-share``), or never answers
   (``--silent-share``; tried CC_CARE_CALLS_ATTEMPTS times, CC_CARE_CALLS_RETRY_SECONDS apart, each ringing
   CC_OUTBOUND_RING_SECONDS, then missed and escalated). Timed: first job queued → last job ended, against the
   window; calls a minute, the engine's in-flight peak, the outcomes, CPU and memory of the platform and Asterisk.
2. The red button meanwhile. sos_load's SOS step (baseline and `sos`, ``--sos-rate`` calls/s for
   ``--sos-seconds``) once before the campaign (quiet) and ``--sos-during`` times while it runs: the SOS
   answer → queue p95 during against quiet (target: within 10 %).

The stack runs at any hour: CC_OUTBOUND_QUIET_HOURS=none (the platform's default keeps care calls out of
21:00-08:00, the centre's time). Results: a table on stdout and a JSON file under var/bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import threading
import time
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from benchmarks import report
from benchmarks.ami_timing import AmiTimings
from benchmarks.probes import Peaks, Sampler, active_channels, rss_mb
from benchmarks.sipp_load import SippRunner, write_injection
from benchmarks.sos_load import (
    RUN_HEADER,
    RUN_LEGEND,
    SOS,
    Bench,
    ServiceRun,
    Step,
    _fmt,
    percentiles,
    print_step,
)
from benchmarks.stack import BASELINE_EXTEN, BENCH_DIR, Counts, bench_stack
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.care_calls.models import CareRecord
from callcenter.care_calls.services import MISSED_TITLE
from callcenter.config import ConfigError, Settings
from callcenter.db.session import Database
from callcenter.elders.models import Elder, LivingSituation
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.outbound.models import IN_FLIGHT, OPEN_JOB_STATES, OutboundAttempt, OutboundJob, OutboundPurpose
from tests import harness

TARGET_CALLS = 1000
TARGET_WINDOW_SECONDS = 3600
TARGET_P95_RATIO = 1.10  # the SOS answer → queue p95 during the campaign within 10 % of its quiet value
DEVICE_CHANNEL = "PJSIP/bench-dev-"  # the SOS devices' channels (the campaign's are PJSIP/trunk-…)
# What each elder does, by the last digit of their number (tests/sipp/trunk_responders.xml).
PRESSES_1, PRESSES_2, SILENT = "1", "2", "9"
EXPECTED = {PRESSES_1: ("done", "well"), PRESSES_2: ("done", "call_back"), SILENT: ("failed", "no_answer")}


# -- the elders -----------------------------------------------------------------------------------------------------

def elder_digits(count: int, call_back_share: float, silent_share: float) -> list[str]:
    """The last digit of each elder's number, the shares spread evenly through the campaign (not bunched)."""
    digits = []
    for n in range(count):
        if math.floor((n + 1) * silent_share) > math.floor(n * silent_share):
            digits.append(SILENT)
        elif math.floor((n + 1) * call_back_share) > math.floor(n * call_back_share):
            digits.append(PRESSES_2)
        else:
            digits.append(PRESSES_1)
    return digits


def seed_campaign(digits: Sequence[str]) -> Any:
    """The campaign's elders, living alone, phones 139NNNNNNN<digit>; the SOS devices' elders (seeded first) are
    moved to "with family" so the campaign calls exactly these."""

    async def seed(db: Database) -> None:
        async with db.transaction() as session:
            await session.execute(update(Elder).values(living_situation=LivingSituation.WITH_FAMILY))
            for n, digit in enumerate(digits, start=1):
                session.add(Elder(full_name=f"关爱老人{n:04d}", phone=f"139{n:07d}{digit}",
                                  address=f"关爱社区 {n} 号", community="关爱社区",
                                  living_situation=LivingSituation.ALONE, care_level=2))

    return seed


def campaign_environment(args: argparse.Namespace) -> dict[str, str]:
    reserved = 10  # the platform's default CC_OUTBOUND_RESERVED_CHANNELS
    return {
        "CC_OUTBOUND_CONCURRENCY": f"cascade=6,notification=4,callback=2,care_call={args.concurrency},reminder=2",
        # The platform's 30 channels, or more when the cap asks for more than 30 less the reserved 10.
        "CC_OUTBOUND_CHANNELS": str(max(30, args.concurrency + reserved)),
        "CC_OUTBOUND_RESERVED_CHANNELS": str(reserved),
        # The benchmark runs at any hour: the default quiet hours (21:00-08:00) would hold every care call.
        "CC_OUTBOUND_QUIET_HOURS": "none",
        "CC_OUTBOUND_RING_SECONDS": str(args.ring_seconds),
        "CC_CARE_CALLS_ATTEMPTS": str(args.attempts),
        "CC_CARE_CALLS_RETRY_SECONDS": str(args.retry_seconds),
        "CC_TIMEZONE": args.timezone,
    }


def campaign_window(zone: str, seconds: float) -> tuple[str, str]:
    """The schedules' window in the centre's time: from this minute to ``seconds`` later (rounded up to the
    minute); it must end within the local day (a schedule's window does)."""
    now = dt.datetime.now(ZoneInfo(zone))
    start = now.replace(second=0, microsecond=0)
    end = now + dt.timedelta(seconds=seconds + 59)
    end = end.replace(second=0, microsecond=0)
    if end.date() != start.date():
        raise SystemExit(f"the campaign's window {start:%H:%M} + {seconds:g} s would cross midnight in {zone}: "
                         f"run it at another hour or give --timezone a zone where it is day")
    return f"{start:%H:%M}", f"{end:%H:%M}"


def start_campaign(stack: harness.Stack, window: tuple[str, str]) -> int:
    """"Enable for all living alone" with today's window: one daily check-in schedule each, planned at once."""
    status, body = stack.api("POST", "/api/v1/care-schedules/enable-living-alone",
                             {"window_start": window[0], "window_end": window[1]}, token=stack.token())
    if status != 200:
        raise RuntimeError(f"enable-living-alone refused: {status} {body}")
    return int(body["created"])


# -- watching the campaign ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CampaignSample:
    at: float  # time.monotonic()
    jobs: int
    open_jobs: int
    in_flight: int  # attempts dialling, uncertain or answered (the engine's calls under way)


async def campaign_state(db: Database) -> tuple[int, int, int]:
    care = OutboundJob.purpose == OutboundPurpose.CARE_CALL
    async with db.transaction(read_only=True) as session:
        jobs = await session.scalar(select(func.count(OutboundJob.id)).where(care))
        open_jobs = await session.scalar(select(func.count(OutboundJob.id)).where(
            care, OutboundJob.state.in_(OPEN_JOB_STATES)))
        in_flight = await session.scalar(select(func.count(OutboundAttempt.id))
                                         .join(OutboundJob, OutboundJob.id == OutboundAttempt.job_id)
                                         .where(care, OutboundAttempt.state.in_(IN_FLIGHT)))
    return int(jobs or 0), int(open_jobs or 0), int(in_flight or 0)


class CampaignMonitor:
    """The campaign's jobs and calls under way, read from the database once a second in a thread."""

    def __init__(self, stack: harness.Stack, interval: float = 1.0) -> None:
        self._stack = stack
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._poll()), name="campaign", daemon=True)
        self.samples: list[CampaignSample] = []
        self.error: str | None = None

    def __enter__(self) -> CampaignMonitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _poll(self) -> None:
        db = self._stack.database()
        try:
            while not self._stop.is_set():
                try:
                    jobs, open_jobs, in_flight = await campaign_state(db)
                    self.samples.append(CampaignSample(time.monotonic(), jobs, open_jobs, in_flight))
                except Exception as error:  # a busy moment of the database: the next sample will do
                    self.error = repr(error)
                await asyncio.sleep(self._interval)
        finally:
            await db.dispose()

    @property
    def last(self) -> CampaignSample | None:
        return self.samples[-1] if self.samples else None

    def finished(self) -> bool:
        last = self.last
        return last is not None and last.jobs > 0 and last.open_jobs == 0

    def peak(self) -> int:
        return max((s.in_flight for s in self.samples), default=0)

    def in_flight_between(self, start: float, end: float) -> dict[str, float | None]:
        values = [s.in_flight for s in self.samples if start <= s.at <= end]
        if not values:
            return {"min": None, "mean": None, "max": None}
        return {"min": min(values), "mean": round(sum(values) / len(values), 1), "max": max(values)}


# -- the SOS meanwhile ----------------------------------------------------------------------------------------------

async def inbound_counts(db: Database) -> Counts:
    """sos_load's counts without the campaign: no missed check-in's emergency order, no outbound call."""
    async with db.transaction(read_only=True) as session:
        orders = await session.scalar(select(func.count(WorkOrder.id)).where(
            WorkOrder.kind == WorkOrderKind.EMERGENCY, WorkOrder.title != MISSED_TITLE))
        sos = await session.scalar(select(func.count(Call.id)).where(Call.kind == CallKind.SOS))
        calls = await session.scalar(select(func.count(Call.id)).where(Call.kind != CallKind.OUTBOUND))
        open_calls = await session.scalar(select(func.count(Call.id)).where(
            Call.kind != CallKind.OUTBOUND, Call.disposition == Disposition.IN_PROGRESS))
    return Counts(int(orders or 0), int(sos or 0), int(calls or 0), int(open_calls or 0))


def device_channels(stack: harness.Stack) -> list[str]:
    listing = stack.runtime.cli("core show channels concise", timeout=5, check=False) or ""
    return [line.split("!")[0] for line in listing.splitlines() if line.startswith(DEVICE_CHANNEL)]


class CampaignBench(Bench):
    """sos_load's Bench beside a running campaign: a run has settled when the SOS devices' channels and inbound
    calls are gone (the campaign's calls stay up and are never hung up by it); the elders' SIPp is sampled too."""

    def __init__(self, stack: harness.Stack, runner: SippRunner, timings: AmiTimings,
                 elders: harness.TrunkResponders) -> None:
        super().__init__(stack, runner, timings)
        self.elders = elders

    def pids(self) -> dict[str, int | None]:
        return {**super().pids(), "elders": self.elders.pid}

    def counts(self) -> Counts:
        return self.stack.query(inbound_counts)  # type: ignore[no-any-return]

    def settle(self, timeout: float = 90.0) -> float:
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            if not device_channels(self.stack) and self.counts().in_progress == 0:
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        for channel in device_channels(self.stack):
            self.stack.runtime.cli(f"channel request hangup {channel}", check=False)
        time.sleep(2)
        return round(timeout, 1)


@dataclasses.dataclass
class SosStep:
    phase: str  # quiet, or during (the campaign's second it started at)
    step: Step
    started_utc: dict[str, dt.datetime]  # when each run began and ended: baseline, sos, end
    in_flight: dict[str, dict[str, float | None]]  # the campaign's calls under way during each run


def sos_step(bench: CampaignBench, monitor: CampaignMonitor | None, phase: str, rate: float, seconds: float,
             hold_ms: int) -> SosStep:
    """sos_load's step (baseline then sos, the same calls), each run's span noted against the campaign."""
    calls = max(1, round(rate * seconds))
    limit = max(10, int(rate * (hold_ms / 1000 + 10)))
    marks: dict[str, tuple[float, dt.datetime]] = {}
    runs: dict[str, ServiceRun] = {}
    for name, service in (("baseline", BASELINE_EXTEN), ("sos", SOS)):
        marks[name] = (time.monotonic(), dt.datetime.now(dt.UTC))
        runs[name] = bench.run(service, rate=rate, calls=calls, hold_ms=hold_ms, limit=limit)
    marks["end"] = (time.monotonic(), dt.datetime.now(dt.UTC))
    spans = {"baseline": (marks["baseline"][0], marks["sos"][0]), "sos": (marks["sos"][0], marks["end"][0])}
    in_flight = {name: monitor.in_flight_between(*span) if monitor else {"min": 0, "mean": 0, "max": 0}
                 for name, span in spans.items()}
    return SosStep(phase, Step(rate, runs["baseline"], runs["sos"]), {k: v[1] for k, v in marks.items()}, in_flight)


def ratio(quiet: SosStep | None, during: SosStep) -> float | None:
    if quiet is None:
        return None
    before, now = quiet.step.sos.queue_ms.p95, during.step.sos.queue_ms.p95
    return None if before is None or now is None or before <= 0 else round(now / before, 3)


# -- the campaign's figures -----------------------------------------------------------------------------------------

def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


async def campaign_rows(db: Database) -> dict[str, Any]:
    care = OutboundJob.purpose == OutboundPurpose.CARE_CALL
    async with db.transaction(read_only=True) as session:
        jobs = (await session.execute(select(
            OutboundJob.id, OutboundJob.target, OutboundJob.state, OutboundJob.outcome, OutboundJob.attempts,
            OutboundJob.created_at, OutboundJob.finished_at).where(care))).all()
        attempts = (await session.execute(select(
            OutboundAttempt.job_id, OutboundAttempt.state, OutboundAttempt.started_at, OutboundAttempt.answered_at,
            OutboundAttempt.ended_at, OutboundAttempt.digit_at)
            .join(OutboundJob, OutboundJob.id == OutboundAttempt.job_id).where(care))).all()
        care_outcomes = dict((await session.execute(select(CareRecord.outcome, func.count(CareRecord.id))
                                                    .group_by(CareRecord.outcome))).all())
        missed_orders = await session.scalar(select(func.count(WorkOrder.id)).where(WorkOrder.title == MISSED_TITLE))
    return {"jobs": jobs, "attempts": attempts,
            "care_outcomes": {getattr(k, "value", k): v for k, v in care_outcomes.items()},
            "missed_orders": int(missed_orders or 0)}


def campaign_figures(rows: dict[str, Any], window_seconds: float, sos_starts: list[tuple[dt.datetime, dt.datetime]],
                     ) -> dict[str, Any]:
    jobs, attempts = rows["jobs"], rows["attempts"]
    states: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    unexpected: dict[str, int] = {}
    for job in jobs:
        state = job.state.value
        states[state] = states.get(state, 0) + 1
        key = f"{state}/{job.outcome}"
        outcomes[key] = outcomes.get(key, 0) + 1
        if (state, job.outcome) != EXPECTED.get(job.target[-1]):
            unexpected[key] = unexpected.get(key, 0) + 1
    first_queued = min((j.created_at for j in jobs), default=None)
    finished = [j.finished_at for j in jobs if j.finished_at is not None]
    all_final = bool(jobs) and len(finished) == len(jobs)
    last_ended = max(finished) if all_final else None
    completion = _seconds(first_queued, last_ended)
    first_dials = {}
    for a in attempts:
        first_dials[a.job_id] = min(first_dials.get(a.job_id, a.started_at), a.started_at)
    answered = [a for a in attempts if a.answered_at is not None]
    talk = [s for a in answered if (s := _seconds(a.answered_at, a.ended_at)) is not None]
    to_key = [s * 1000 for a in answered if (s := _seconds(a.answered_at, a.digit_at)) is not None]
    minutes = completion / 60 if completion else None
    attempt_states: dict[str, int] = {}
    for a in attempts:
        attempt_states[a.state.value] = attempt_states.get(a.state.value, 0) + 1
    started_in_sos = sum(1 for a in attempts for start, end in sos_starts if start <= a.started_at <= end)
    return {
        "jobs": len(jobs), "job_states": states, "job_outcomes": outcomes,
        "unexpected_outcomes": unexpected,  # a job that did not end as its elder behaves (a key not heard, …)
        "care_record_outcomes": rows["care_outcomes"], "missed_check_in_orders": rows["missed_orders"],
        "attempts": len(attempts), "attempt_states": attempt_states, "answered": len(answered),
        "first_queued": first_queued.isoformat() if first_queued else None,
        "last_ended": last_ended.isoformat() if last_ended else None,
        "completion_seconds": None if completion is None else round(completion, 1),
        "every_first_dial_by_seconds": None if not first_dials or first_queued is None
        else round(_seconds(first_queued, max(first_dials.values())) or 0, 1),
        "calls_per_minute": None if not minutes else round(len(attempts) / minutes, 1),
        "answered_per_minute": None if not minutes else round(len(answered) / minutes, 1),
        "answered_call_seconds": dataclasses.asdict(percentiles(talk)),
        "answer_to_key_ms": dataclasses.asdict(percentiles(to_key)),
        "care_calls_started_during_sos_runs": started_in_sos,
        "completed_within_window": all_final and states.get("expired", 0) == 0 and completion is not None
        and completion <= window_seconds,
    }


# -- report ---------------------------------------------------------------------------------------------------------

def print_campaign(figures: dict[str, Any], peaks: Peaks, in_flight_peak: int, window_seconds: float) -> None:
    cpu = peaks.cpu_percent
    print(f"\n[bench] campaign: {figures['jobs']} care calls, states {figures['job_states']}, outcomes "
          f"{figures['job_outcomes']}")
    if figures["unexpected_outcomes"]:
        print(f"      not as the elders behave: {figures['unexpected_outcomes']}")
    print(f"      first queued → last ended {_fmt(figures['completion_seconds'], 1)} s (window {window_seconds:g} s): "
          f"{'COMPLETED WITHIN THE WINDOW' if figures['completed_within_window'] else 'NOT COMPLETED WITHIN IT'}; "
          f"every first dial by {_fmt(figures['every_first_dial_by_seconds'], 1)} s")
    print(f"      {figures['attempts']} calls ({figures['answered']} answered): {_fmt(figures['calls_per_minute'], 1)} "
          f"calls/min, {_fmt(figures['answered_per_minute'], 1)} answered/min; in flight at most {in_flight_peak}; "
          f"answered call p50/p95 {_fmt(figures['answered_call_seconds']['p50'], 1)}/"
          f"{_fmt(figures['answered_call_seconds']['p95'], 1)} s; missed check-ins' orders "
          f"{figures['missed_check_in_orders']}")
    print(f"      CPU (% of one core, mean): platform {_fmt(cpu.get('platform'))} (+ children "
          f"{_fmt(cpu.get('platform children'))}), Asterisk {_fmt(cpu.get('asterisk'))}, elders' SIPp "
          f"{_fmt(cpu.get('elders'))}, other {_fmt(cpu.get('other'))}; peak RSS platform "
          f"{peaks.platform_rss_mb:.0f} MB, Asterisk {peaks.asterisk_rss_mb:.0f} MB; channels at most "
          f"{peaks.channels}; load at most {peaks.load1:.2f}", flush=True)


def print_sos(step: SosStep, quiet: SosStep | None) -> None:
    print(f"[bench] SOS step, {step.phase}: campaign calls in flight during baseline "
          f"{step.in_flight['baseline']}, during sos {step.in_flight['sos']}")
    print_step(step.step)
    if quiet is not None and step is not quiet:
        value = ratio(quiet, step)
        print(f"      sos answer→queue p95 {_fmt(step.step.sos.queue_ms.p95, 1)} ms against quiet "
              f"{_fmt(quiet.step.sos.queue_ms.p95, 1)} ms: ×{_fmt(value, 3)} (target ≤ ×{TARGET_P95_RATIO:g})",
              flush=True)


def sos_json(step: SosStep) -> dict[str, Any]:
    return {"phase": step.phase, "rate": step.step.rate, "ok": step.step.ok,
            "runs_started_utc": {k: v.isoformat() for k, v in step.started_utc.items()},
            "campaign_in_flight": step.in_flight,
            "baseline": dataclasses.asdict(step.step.baseline), "sos": dataclasses.asdict(step.step.sos),
            "added_ms": {"answer_to_queue_p50": step.step.added("queue_ms", "p50"),
                         "answer_to_queue_p95": step.step.added("queue_ms", "p95")}}


def verdicts(args: argparse.Namespace, figures: dict[str, Any] | None, in_flight_peak: int,
             quiet: SosStep | None, during: list[SosStep]) -> dict[str, Any]:
    ratios = [r for s in during if (r := ratio(quiet, s)) is not None]
    full_size = args.calls >= TARGET_CALLS and args.window_seconds <= TARGET_WINDOW_SECONDS
    completed = None if figures is None else figures["completed_within_window"]

    def p(step: SosStep | None, pct: str) -> float | None:
        return None if step is None else getattr(step.step.sos.queue_ms, pct)

    return {
        "care_calls": args.calls, "window_seconds": args.window_seconds, "concurrency": args.concurrency,
        "completion_seconds": None if figures is None else figures["completion_seconds"],
        "completed_within_window": completed,
        "target_1000_calls_in_1h_met": completed if full_size else None,  # None: not the target's size (--quick)
        "calls_per_minute": None if figures is None else figures["calls_per_minute"],
        "engine_in_flight_peak": in_flight_peak,
        "job_states": None if figures is None else figures["job_states"],
        "unexpected_outcomes": None if figures is None else sum(figures["unexpected_outcomes"].values()),
        "sos_answer_to_queue_p50_p95_ms_quiet": [p(quiet, "p50"), p(quiet, "p95")],
        "sos_answer_to_queue_p50_p95_ms_during": [[p(s, "p50"), p(s, "p95")] for s in during],
        "sos_p95_ratio_during_over_quiet": ratios,
        "target_sos_p95_within_10pct_met": None if not ratios else all(r <= TARGET_P95_RATIO for r in ratios),
        "sos_steps_ok": None if quiet is None else all(s.step.ok for s in [quiet, *during]),
    }


# -- main -----------------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.care_campaign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=TARGET_CALLS, help="elders called, one check-in each "
                                                                        f"(default {TARGET_CALLS})")
    parser.add_argument("--window-seconds", type=float, default=TARGET_WINDOW_SECONDS,
                        help=f"the schedules' window from now; jobs not reached by its end expire "
                             f"(default {TARGET_WINDOW_SECONDS})")
    parser.add_argument("--concurrency", type=int, default=10,
                        help="care calls at once (CC_OUTBOUND_CONCURRENCY care_call=N; default 10)")
    parser.add_argument("--call-back-share", type=float, default=0.10,
                        help="share of elders pressing 2, call back (default 0.10)")
    parser.add_argument("--silent-share", type=float, default=0.05,
                        help="share of elders never answering (default 0.05)")
    parser.add_argument("--listen-ms", type=int, default=3000,
                        help="how long an elder listens to the prompt before pressing the key (default 3000)")
    parser.add_argument("--ring-seconds", type=int, default=30,
                        help="CC_OUTBOUND_RING_SECONDS: an unanswered call's ring (default 30, the platform's)")
    parser.add_argument("--attempts", type=int, default=3,
                        help="CC_CARE_CALLS_ATTEMPTS: tries of an unanswered check-in (default 3, the platform's)")
    parser.add_argument("--retry-seconds", type=int, default=900,
                        help="CC_CARE_CALLS_RETRY_SECONDS between tries (default 900, the platform's)")
    parser.add_argument("--timezone", default="Asia/Shanghai",
                        help="CC_TIMEZONE, the centre's (default Asia/Shanghai); the window must end that day")
    parser.add_argument("--sos-rate", type=float, default=5.0, help="SOS calls/s of each SOS step (default 5)")
    parser.add_argument("--sos-seconds", type=float, default=10.0, help="length of each SOS run (default 10)")
    parser.add_argument("--sos-hold-ms", type=int, default=2000, help="an SOS call's hold after its 7 s of speech "
                                                                      "(default 2000, as sos_load)")
    parser.add_argument("--sos-during", type=int, default=3,
                        help="SOS steps while the campaign runs (default 3; 0: none, and no quiet step either)")
    parser.add_argument("--sos-gap", type=float, default=240.0,
                        help="seconds between the SOS steps during the campaign (default 240)")
    parser.add_argument("--devices", type=int, default=50, help="SOS devices seeded (default 50)")
    report.add_common_arguments(parser, "care_campaign",
                                "about 6 minutes: 100 care calls in a 600 s window (unanswered ones retried 30 s "
                                "apart), one SOS step during it")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.window_seconds, args.retry_seconds, args.sos_during = 100, 600.0, 30, 1
    if args.calls < 1 or args.concurrency < 1 or args.window_seconds < 60:
        parser.error("--calls and --concurrency must be positive, --window-seconds at least 60")
    if not 0 <= args.silent_share + args.call_back_share <= 1:
        parser.error("--silent-share and --call-back-share must add up to at most 1")
    try:  # what the platform would refuse, refused here before a stack is started
        Settings.from_env({"CC_DATA_DIR": str(BENCH_DIR), **campaign_environment(args)})
    except ConfigError as error:
        parser.error(str(error))
    tries = (args.attempts - 1) * args.retry_seconds + args.attempts * args.ring_seconds
    if tries > args.window_seconds:
        print(f"[bench] note: an unanswered check-in's {args.attempts} tries take {tries} s, longer than the "
              f"{args.window_seconds:g} s window: those jobs will expire (--retry-seconds)", flush=True)
    return args


def run_campaign(args: argparse.Namespace, stack: harness.Stack, bench: CampaignBench | None,
                 monitor: CampaignMonitor, quiet: SosStep | None, during: list[SosStep]) -> float:
    """Start the campaign, run the SOS steps while it runs, wait for its end (its window and a margin at most);
    the campaign's start (monotonic)."""
    window = campaign_window(args.timezone, args.window_seconds)
    started = time.monotonic()
    created = start_campaign(stack, window)
    print(f"[bench] campaign started: {created} daily check-ins, window {window[0]}-{window[1]} "
          f"({args.timezone}), care-call cap {args.concurrency}", flush=True)
    deadline = started + args.window_seconds + args.ring_seconds + 120
    next_sos = started + 20.0  # let it reach its cap first
    last_report = started
    while time.monotonic() < deadline and not monitor.finished():
        now = time.monotonic()
        last = monitor.last
        if (bench is not None and len(during) < args.sos_during and now >= next_sos and last is not None
                and last.in_flight >= max(1, args.concurrency // 2)):
            step = sos_step(bench, monitor, f"during, campaign second {now - started:.0f}", args.sos_rate,
                            args.sos_seconds, args.sos_hold_ms)
            during.append(step)
            print_sos(step, quiet)
            next_sos = time.monotonic() + args.sos_gap
            continue
        if now - last_report >= 30 and last is not None:
            print(f"[bench]   {now - started:5.0f} s: {last.jobs - last.open_jobs}/{last.jobs} jobs ended, "
                  f"{last.in_flight} calls in flight", flush=True)
            last_report = now
        time.sleep(1)
    return started


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command, started_at = report.start("care_campaign", argv)
    digits = elder_digits(args.calls, args.call_back_share, args.silent_share)
    quiet: SosStep | None = None
    during: list[SosStep] = []
    figures: dict[str, Any] | None = None
    peaks = Peaks()
    in_flight_peak = 0
    idle_rss = 0.0
    asterisk_version = ""
    print(f"[bench] {command}: starting a stack ({args.devices} devices, {args.calls} elders: "
          f"{digits.count(PRESSES_1)} press 1, {digits.count(PRESSES_2)} press 2, {digits.count(SILENT)} never "
          f"answer; {'PostgreSQL' if args.postgres else 'SQLite'})", flush=True)
    with bench_stack(args.devices, args.postgres, seed=seed_campaign(digits),
                     environment=campaign_environment(args)) as (stack, credentials):
        asterisk_version = stack.runtime.version() or ""
        workdir = stack.settings.data_dir / "sipp"
        runner = SippRunner(stack, write_injection(workdir / "devices.csv", credentials), workdir)
        timings = AmiTimings(stack.settings)
        timings.start()
        elders = harness.TrunkResponders(stack, workdir / "elders")
        # Every call of the campaign, retries included, and more: SIPp is stopped at the end.
        elders.answer_calls(args.calls * (args.attempts + 1) + 100, listen_ms=args.listen_ms,
                            timeout=args.window_seconds + 900)
        bench = CampaignBench(stack, runner, timings, elders)
        try:
            if args.sos_during > 0:
                print("[bench] warming up (20 calls each way, not reported)", flush=True)
                bench.step(5, 4, 1000)
                print(f"\n{RUN_HEADER}\n{RUN_LEGEND}", flush=True)
                quiet = sos_step(bench, None, "quiet", args.sos_rate, args.sos_seconds, args.sos_hold_ms)
                print_sos(quiet, None)
            idle_rss = rss_mb(bench.pids()["platform"]) or 0.0
            with CampaignMonitor(stack) as monitor, Sampler(stack.runtime, bench.pids, bench.recordings) as sampler:
                campaign_started = run_campaign(args, stack, bench if args.sos_during > 0 else None, monitor,
                                                quiet, during)
            peaks, in_flight_peak = sampler.peaks, monitor.peak()
            if monitor.error:
                print(f"[bench] campaign monitor (last error): {monitor.error}", flush=True)
            if not monitor.finished():
                print(f"[bench] the campaign had not ended {time.monotonic() - campaign_started:.0f} s after it "
                      f"started", flush=True)
            sos_spans = [(s.started_utc["sos"], s.started_utc["end"]) for s in during]
            figures = campaign_figures(stack.query(campaign_rows), args.window_seconds, sos_spans)
            print_campaign(figures, peaks, in_flight_peak, args.window_seconds)
            if errors := elders.errors().strip():
                print(f"[bench] elders' SIPp errors (tail):\n{errors[-800:]}", flush=True)
            if timings.error:
                print(f"[bench] AMI timing reader: {timings.error}", flush=True)
        finally:
            timings.stop()
            runner.stop()
            elders.stop()
            with contextlib.suppress(Exception):
                if active_channels(stack.runtime):
                    stack.runtime.cli("channel request hangup all", check=False)
    result = {
        **report.header(command, started_at, args, asterisk_version),
        "platform_rss_mb_before_campaign": round(idle_rss, 1),
        "verdicts": verdicts(args, figures, in_flight_peak, quiet, during),
        "campaign": figures,
        "campaign_peaks": dataclasses.asdict(peaks),
        "sos_quiet": None if quiet is None else sos_json(quiet),
        "sos_during": [sos_json(s) for s in during],
    }
    return report.finish("care_campaign", result, args.output)


if __name__ == "__main__":
    report.run(main)
