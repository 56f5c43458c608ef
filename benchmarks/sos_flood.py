"""SOS under a log-in flood (issue 12): `make bench`, or `.venv/bin/python -m benchmarks.sos_flood --help`.

One stack, assembled as for the SOS benchmark (benchmarks/stack.py), and the same SOS calls twice:

1. Quiet: SIPp presses the red button ``--calls`` times at ``--rate`` per second (benchmarks/sipp/sos_load.xml,
   each call held ``--hold-ms``, 10 s, after the answer). Halfway through the presses, the real administrator logs
   in from 127.0.0.1.
2. Under a flood: ``--flood-connections`` (60) concurrent clients from 127.0.0.2 send wrong-password log-ins back
   to back, each with a username of its own — half of them the panel's ``POST /login`` form, half
   ``POST /api/v1/auth/login`` (benchmarks/login_flood.py, a process of its own). Once the flood is under way the
   same calls are pressed again, and the administrator logs in again halfway through; the flood is stopped when the
   last call has ended and the platform has closed it in its log.

Timed per call: answer → emergency queue, from the channel going Up to ``QueueCallerJoin``, both stamped by Asterisk
(a read-only AMI session, benchmarks/ami_timing.py) — the platform's ``sos`` AGI runs between the two, exactly as
in benchmarks/sos_load.py. Per phase: SIPp's failed calls, calls answered but never queued, the emergency work
orders per SOS call (exactly one each: lost and duplicated ones counted), orders the QueueCallerJoin safety net had
to raise (the AGI failed), CPU per process. For the flood: its answers by HTTP status, its request rate, its
answer times. Targets: p95 under the flood at most twice the quiet p95, and no failed SOS call.

Nothing answers the queue (callers hear the hold music for the whole call). Results: a table on stdout and a JSON
file under var/bench/.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select

from benchmarks import report
from benchmarks.ami_timing import AmiTimings
from benchmarks.login_flood import FLOOD_ADDRESS, FLOOD_CONNECTIONS, FloodPlan, FloodStats, LoginFlood
from benchmarks.sipp_load import SippRunner, write_injection
from benchmarks.sos_load import SOS, Bench, Percentiles, ServiceRun, percentiles
from benchmarks.stack import bench_stack
from callcenter.calls.models import Call, CallKind
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from tests import harness

TARGET_P95_RATIO = 2.0
ADMIN_USERNAME = "admin"  # bootstrapped by the platform with harness.ADMIN_PASSWORD (CC_ADMIN_PASSWORD)
SAFETY_NET_LOG = "sos.order_raised_by_safety_net"
INTAKE_DEADLINE_LOG = "sos.intake_deadline"  # the AGI gave up its intake after CC_SOS_INTAKE_SECONDS and queued
ORDERS_WAIT_SECONDS = 15.0
# Beyond the SOS phase itself: SIPp's own budget (receive timeout + 30 s), its supervision (+30 s) and settle (90 s).
FLOOD_SLACK_SECONDS = 200.0


@dataclasses.dataclass
class AdminLogin:
    status: int | str  # HTTP status, or the error's name
    ms: float

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclasses.dataclass
class Orders:
    sos_calls: int  # SOS calls the platform logged in the phase
    lost: int  # answered SOS calls without an emergency order (calls the platform never logged included)
    duplicated: int  # emergency orders beyond the first of an SOS call
    safety_net: int  # orders the QueueCallerJoin safety net raised because the sos AGI did not (platform log)


@dataclasses.dataclass
class Phase:
    name: str
    run: ServiceRun
    orders: Orders
    admin: AdminLogin | None  # None: the log-in did not come back within its time
    agi_ms: Percentiles  # the sos AGI inside the platform (its log's fastagi.handled)
    platform_errors: dict[str, int]  # error-level events of the platform's log during the phase, by name
    flood: FloodStats | None = None

    @property
    def intake_deadlines(self) -> int:
        """SOS calls queued without their intake (identification, call log, order) because it ran out of time."""
        return self.platform_errors.get(INTAKE_DEADLINE_LOG, 0)

    @property
    def failed(self) -> int:
        """SOS calls that did not reach the emergency queue: failed at SIPp, never attempted, or answered but hung
        up still outside the queue."""
        run = self.run
        return run.failed + max(0, run.planned - run.attempted) + run.unqueued

    @property
    def queue_ms(self) -> Percentiles:
        return self.run.queue_ms


async def last_call_id(db: Database) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.max(Call.id))) or 0)


async def orders_per_sos_call(db: Database, after_call_id: int) -> list[int]:
    """For each SOS call logged after ``after_call_id``: how many emergency work orders it has."""
    async with db.transaction(read_only=True) as session:
        rows = await session.execute(
            select(Call.id, func.count(WorkOrder.id))
            .outerjoin(WorkOrder, (WorkOrder.call_id == Call.id) & (WorkOrder.kind == WorkOrderKind.EMERGENCY))
            .where(Call.kind == CallKind.SOS, Call.id > after_call_id)
            .group_by(Call.id))
        return [int(count) for _, count in rows]


class FloodBench(Bench):
    """sos_load's Bench (SIPp run, AMI timings, settle, sampling) plus the flood process and the admin log-in."""

    def __init__(self, stack: harness.Stack, runner: SippRunner, timings: AmiTimings) -> None:
        super().__init__(stack, runner, timings)
        self.flood: LoginFlood | None = None

    def pids(self) -> dict[str, int | None]:
        # The flood and the benchmark process share the 2 cores with the stack: their CPU is shown apart.
        return {**super().pids(), "flood": self.flood.pid if self.flood is not None else None,
                "bench": os.getpid()}

    def admin_login(self) -> AdminLogin:
        """The real administrator's log-in through the API, from 127.0.0.1 (urllib, a connection of its own)."""
        started = time.monotonic()
        status: int | str
        try:
            status, _ = self.stack.api("POST", "/api/v1/auth/login",
                                       {"username": ADMIN_USERNAME, "password": harness.ADMIN_PASSWORD})
        except (OSError, ValueError) as error:  # no answer, or not JSON
            status = type(error).__name__
        return AdminLogin(status, round((time.monotonic() - started) * 1000, 1))

    def _log_size(self) -> int:
        log = self.stack.platform_log
        return log.stat().st_size if log is not None and log.exists() else 0

    def _platform_log_since(self, offset: int) -> tuple[list[float], dict[str, int]]:
        """From the platform's log (JSON lines) written since ``offset``: how long each ``sos`` AGI took inside the
        platform (``fastagi.handled``), in ms — the platform's share of answer → queue — and the error-level events
        by name (intake deadlines, safety-net orders, write turns refused, handlers failed)."""
        log = self.stack.platform_log
        if log is None or not log.exists():
            return [], {}
        with log.open("rb") as text:
            text.seek(offset)
            written = text.read()
        agi_ms: list[float] = []
        errors: collections.Counter[str] = collections.Counter()
        for line in written.splitlines():
            # Only the lines wanted are parsed: the flood's refusals are tens of thousands of warning lines.
            if b'"fastagi.handled"' not in line and b'"level": "error"' not in line:
                continue
            with contextlib.suppress(ValueError, TypeError, KeyError):
                entry = json.loads(line)
                if entry.get("level") == "error":
                    errors[str(entry.get("event"))] += 1
                elif entry.get("handler") == SOS:
                    agi_ms.append(float(entry["elapsed"]) * 1000)
        return agi_ms, dict(errors.most_common())

    def count_orders(self, before_call: int, answered: int, wait: float = ORDERS_WAIT_SECONDS) -> Orders:
        """Emergency orders per SOS call logged after ``before_call``; ``answered``: calls SIPp saw answered.

        An order may come late (replayed from the journal once the database answers again): while some are
        missing, look again once a second for up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            counts = self.stack.query(lambda db: orders_per_sos_call(db, before_call))
            lost = sum(1 for n in counts if n == 0) + max(0, answered - len(counts))
            if lost == 0 or time.monotonic() >= deadline:
                return Orders(sos_calls=len(counts), lost=lost, duplicated=sum(n - 1 for n in counts if n > 1),
                              safety_net=0)
            time.sleep(1)

    def phase(self, name: str, *, calls: int, rate: float, hold_ms: int,
              after_calls: Callable[[], object] | None = None) -> Phase:
        """``calls`` SOS presses at ``rate``/s; the administrator logs in halfway through the presses.
        ``after_calls`` runs once the calls have ended and settled, before the orders are counted: the flood stops
        there, so an order the platform only manages to raise once the flood is gone counts as late, not lost
        (within ``count_orders``' wait)."""
        before_call = self.stack.query(last_call_id)
        log_offset = self._log_size()
        admin: list[AdminLogin] = []
        timer = threading.Timer(calls / rate / 2, lambda: admin.append(self.admin_login()))
        timer.daemon = True
        timer.start()
        try:
            limit = max(10, int(rate * (hold_ms / 1000 + 10)))
            run = self.run(SOS, rate=rate, calls=calls, hold_ms=hold_ms, limit=limit)
        finally:
            timer.cancel()
            timer.join(20)  # the log-in's own timeout is 15 s
        if after_calls is not None:
            after_calls()
        orders = self.count_orders(before_call, run.successful)
        agi_ms, errors = self._platform_log_since(log_offset)
        orders.safety_net = errors.get(SAFETY_NET_LOG, 0)
        return Phase(name, run, orders, admin[0] if admin else None, percentiles(agi_ms), errors)


# -- report ---------------------------------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(quiet: Phase, flood: Phase | None) -> float | None:
    if flood is None or quiet.queue_ms.p95 is None or flood.queue_ms.p95 is None or quiet.queue_ms.p95 <= 0:
        return None
    return round(flood.queue_ms.p95 / quiet.queue_ms.p95, 2)


def _admin(login: AdminLogin | None) -> str:
    return "no answer" if login is None else f"{login.status} in {login.ms:.0f} ms"


HEADER = (f"{'phase':<6} {'ok/tried':>9} {'fail':>4} {'answer→queue p50/p95/p99':>26} {'AGI p50/p95':>13} "
          f"{'orders':>6} {'lost':>4} {'dup':>3} {'ddl':>3} {'net':>3} {'settle':>6} {'plat%':>5} {'ast%':>5} "
          f"{'sipp%':>5} {'fld%':>5} {'bch%':>5} {'oth%':>5}  admin log-in")
LEGEND = ("ms; fail: failed at SIPp, not attempted or never queued; AGI: the sos AGI inside the platform (its log);"
          "\norders: SOS calls logged; lost/dup: calls without an emergency order / orders beyond one; ddl: queued "
          "without the\nintake (CC_SOS_INTAKE_SECONDS ran out); net: orders raised by the QueueCallerJoin safety net; "
          "settle: s until every\ncall was closed in the platform's log; %: CPU of one core, mean over the phase "
          "(2 cores = 200%); fld: the flood\nprocess, bch: the benchmark's own")


def phase_row(phase: Phase) -> str:
    run, q, cpu = phase.run, phase.queue_ms, phase.run.peaks.cpu_percent
    return (f"{phase.name:<6} {run.successful:>4}/{run.attempted:<4} {phase.failed:>4} "
            f"{_fmt(q.p50, 1) + '/' + _fmt(q.p95, 1) + '/' + _fmt(q.p99, 1):>26} "
            f"{_fmt(phase.agi_ms.p50) + '/' + _fmt(phase.agi_ms.p95):>13} {phase.orders.sos_calls:>6} "
            f"{phase.orders.lost:>4} {phase.orders.duplicated:>3} {phase.intake_deadlines:>3} "
            f"{phase.orders.safety_net:>3} "
            f"{run.settle_seconds:>6.1f} {_fmt(cpu.get('platform')):>5} {_fmt(cpu.get('asterisk')):>5} "
            f"{_fmt(cpu.get('sipp')):>5} {_fmt(cpu.get('flood')):>5} {_fmt(cpu.get('bench')):>5} "
            f"{_fmt(cpu.get('other')):>5}  {_admin(phase.admin)}")


def error_line(phase: Phase) -> str:
    errors = ", ".join(f"{name} ×{count}" for name, count in phase.platform_errors.items())
    return f"       {phase.name}: platform errors logged: {errors or 'none'}"


def flood_lines(stats: FloodStats, plan: FloodPlan) -> list[str]:
    statuses = ", ".join(f"{key} ×{count:,}" for key, count in stats.statuses.items())
    latency = stats.latency_ms
    lines = [f"flood: {plan.connections} connections from {plan.address} ({plan.panel_connections} panel form, "
             f"{plan.connections - plan.panel_connections} API): {stats.requests:,} requests in {stats.seconds:g} s "
             f"= {stats.rate:,.0f}/s; ended: {stats.ended_by}",
             f"       answers: {statuses or 'none'}",
             f"       answer time ms p50/p95/p99/max: {_fmt(latency.get('p50'), 1)}/{_fmt(latency.get('p95'), 1)}/"
             f"{_fmt(latency.get('p99'), 1)}/{_fmt(latency.get('max'), 1)}"]
    if stats.panel_setup:
        lines.append(f"       panel form: {stats.panel_setup}")
    return lines


def verdicts(quiet: Phase, flooded: Phase | None) -> dict[str, Any]:
    stats = flooded.flood if flooded is not None else None
    covered = stats is not None and stats.ended_by == "stopped"
    p95_ratio = ratio(quiet, flooded)
    failed_under_flood = flooded.failed if flooded is not None else None
    phases = [p for p in (quiet, flooded) if p is not None]
    return {
        "quiet_answer_to_queue_p50_p95_ms": [quiet.queue_ms.p50, quiet.queue_ms.p95],
        "flood_answer_to_queue_p50_p95_ms": None if flooded is None else [flooded.queue_ms.p50,
                                                                          flooded.queue_ms.p95],
        "p95_ratio_flood_over_quiet": p95_ratio,
        "sos_agi_p50_p95_ms_quiet_flood": [[quiet.agi_ms.p50, quiet.agi_ms.p95],
                                           None if flooded is None else [flooded.agi_ms.p50, flooded.agi_ms.p95]],
        "target_p95_ratio_at_most_2_met": None if p95_ratio is None else p95_ratio <= TARGET_P95_RATIO,
        "failed_sos_calls_quiet": quiet.failed,
        "failed_sos_calls_under_flood": failed_under_flood,
        "target_0_failed_sos_calls_under_flood_met": None if failed_under_flood is None else failed_under_flood == 0,
        "orders_lost": sum(p.orders.lost for p in phases),
        "orders_duplicated": sum(p.orders.duplicated for p in phases),
        "orders_by_safety_net": sum(p.orders.safety_net for p in phases),
        "sos_queued_without_intake_quiet_flood": [quiet.intake_deadlines,
                                                  None if flooded is None else flooded.intake_deadlines],
        "flood_requests_per_second": None if stats is None else stats.rate,
        "flood_answers_by_status": None if stats is None else stats.by_status(),
        # The flood must outlast the SOS phase, or the phase measured a quiet platform for part of the time.
        "flood_covered_the_sos_phase": covered,
        "admin_login_quiet": None if quiet.admin is None else dataclasses.asdict(quiet.admin),
        "admin_login_under_flood": None if flooded is None or flooded.admin is None
        else dataclasses.asdict(flooded.admin),
        "admin_login_under_flood_ok": None if flooded is None else flooded.admin is not None and flooded.admin.ok,
    }


def print_summary(quiet: Phase, flooded: Phase, plan: FloodPlan) -> None:
    p95_ratio = ratio(quiet, flooded)
    ok_ratio = p95_ratio is not None and p95_ratio <= TARGET_P95_RATIO
    print(f"\np95 answer→queue under the flood / quiet: {_fmt(flooded.queue_ms.p95, 1)} / "
          f"{_fmt(quiet.queue_ms.p95, 1)} ms = {_fmt(p95_ratio, 2)}  (target ≤ {TARGET_P95_RATIO:g}: "
          f"{'MET' if ok_ratio else 'NOT MET'})")
    print(f"failed SOS calls: {quiet.failed} quiet, {flooded.failed} under the flood  (target 0 under the flood: "
          f"{'MET' if flooded.failed == 0 else 'NOT MET'}); orders lost {quiet.orders.lost + flooded.orders.lost}, "
          f"duplicated {quiet.orders.duplicated + flooded.orders.duplicated}")
    if flooded.flood is not None:
        for line in flood_lines(flooded.flood, plan):
            print(line)
        if flooded.flood.ended_by != "stopped":
            print("       << the flood ended before the SOS phase did: raise --flood-max-requests")
    admin_ok = flooded.admin is not None and flooded.admin.ok
    print(f"admin log-in from 127.0.0.1: {_admin(quiet.admin)} quiet, {_admin(flooded.admin)} under the flood  "
          f"({'OK' if admin_ok else 'NOT OK'})")
    print(f"SOS calls queued without their intake (deadline): {quiet.intake_deadlines} quiet, "
          f"{flooded.intake_deadlines} under the flood", flush=True)


# -- main -----------------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sos_flood", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=60, help="SOS calls per phase (default 60)")
    parser.add_argument("--rate", type=float, default=5.0, help="SOS calls per second (default 5)")
    # Long enough that a slow intake is measured rather than cut off by the device's hang-up (sos_load's 2 s
    # would make a p95 beyond 2 s unmeasurable); a call still outside the queue when it hangs up counts as failed.
    parser.add_argument("--hold-ms", type=int, default=10_000,
                        help="how long each call stays up after the answer; a call not in the emergency queue by "
                             "then counts as failed (default 10000)")
    parser.add_argument("--flood-connections", type=int, default=FLOOD_CONNECTIONS,
                        help=f"concurrent log-in clients from {FLOOD_ADDRESS} (default {FLOOD_CONNECTIONS})")
    parser.add_argument("--flood-panel-share", type=float, default=0.5,
                        help="share of them posting the panel's /login form instead of the API's (default 0.5)")
    parser.add_argument("--flood-max-requests", type=int, default=500_000,
                        help="the flood stops after this many requests whatever happens (default 500000)")
    parser.add_argument("--devices", type=int, default=50, help="synthetic devices seeded (default 50)")
    report.add_common_arguments(parser, "sos_flood", "about 90 s: 20 calls per phase")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls = 20
    if args.calls < 1 or args.rate <= 0 or args.flood_connections < 1 or not 0 <= args.flood_panel_share <= 1:
        parser.error("--calls, --rate and --flood-connections must be positive, --flood-panel-share within 0..1")
    return args


def flood_plan(args: argparse.Namespace, base: str) -> FloodPlan:
    # Bounded in time as well as in requests: the SOS phase's own worst case (SIPp's budget and settle) plus slack.
    seconds = args.calls / args.rate + args.hold_ms / 1000 + FLOOD_SLACK_SECONDS
    return FloodPlan(base=base, max_requests=args.flood_max_requests, max_seconds=seconds,
                     connections=args.flood_connections,
                     panel_connections=round(args.flood_connections * args.flood_panel_share))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command, started = report.start("sos_flood", argv)
    quiet: Phase | None = None
    flooded: Phase | None = None
    plan: FloodPlan | None = None
    asterisk_version = ""
    print(f"[bench] {command}: starting a stack ({args.devices} devices, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'})", flush=True)
    with bench_stack(args.devices, args.postgres) as (stack, credentials):
        asterisk_version = stack.runtime.version() or ""
        plan = flood_plan(args, stack.http_base)
        workdir = stack.settings.data_dir / "sipp"
        runner = SippRunner(stack, write_injection(workdir / "devices.csv", credentials), workdir)
        timings = AmiTimings(stack.settings)
        timings.start()
        bench = FloodBench(stack, runner, timings)
        try:
            print("[bench] warming up (10 SOS calls and one admin log-in, not reported)", flush=True)
            bench.phase("warm", calls=10, rate=5, hold_ms=1000)
            print(f"\n{HEADER}\n{LEGEND}", flush=True)
            quiet = bench.phase("quiet", calls=args.calls, rate=args.rate, hold_ms=args.hold_ms)
            print(phase_row(quiet), flush=True)
            print(error_line(quiet), flush=True)
            with LoginFlood(plan) as flood:
                bench.flood = flood
                try:
                    flooded = bench.phase("flood", calls=args.calls, rate=args.rate, hold_ms=args.hold_ms,
                                          after_calls=flood.stop)
                finally:
                    flooded_stats = flood.stop()  # already stopped unless the phase failed; stop() is idempotent
                    bench.flood = None
                flooded.flood = flooded_stats
            print(phase_row(flooded))
            print(error_line(flooded))
            print_summary(quiet, flooded, plan)
            if timings.error:
                print(f"[bench] AMI timing reader: {timings.error}", flush=True)
            for phase in (quiet, flooded):
                if phase.run.errors:
                    print(f"[bench] {phase.name} SIPp errors (tail):\n{phase.run.errors[-800:]}", flush=True)
        finally:
            timings.stop()
            runner.stop()
    assert quiet is not None and plan is not None
    result = {
        **report.header(command, started, args, asterisk_version),
        "verdicts": verdicts(quiet, flooded),
        "flood_plan": dataclasses.asdict(plan),
        "phases": [{**dataclasses.asdict(p), "failed_sos_calls": p.failed} for p in (quiet, flooded)
                   if p is not None],
    }
    return report.finish("sos_flood", result, args.output)


if __name__ == "__main__":
    report.run(main)
