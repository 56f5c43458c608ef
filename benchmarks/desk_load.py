"""Screen-pop latency with 500 panels connected (issue 4): `make bench`, or
`.venv/bin/python -m benchmarks.desk_load --help`.

A real stack (Asterisk, `callcenter serve`, SQLite or PostgreSQL) with ``--panels`` staff accounts: agents, each
with a SIP phone logged in to the emergency and hotline queues, and ``--supervisors`` supervisors. Every account
has one panel: an authenticated WebSocket on ``/ws`` (benchmarks/panels.py, a process of its own). SIPp
devices press the red button at each ``--rates`` for ``--calls`` calls; the queue rings a free agent's phone
(one SIPp UAS answers every agent's phone after ``--ring-ms``); the device hangs up ``--hold-ms`` after its answer.

Per answered call: **AgentConnect → frame received**, from Asterisk's AMI ``AgentConnect`` timestamp (a second,
read-only AMI session; timestampevents) to the moment the answering agent's panel had the ``screen_pop`` frame of
that call (``time.time()`` in the panel process; one machine, one clock). It is split at the platform's own log line
``desk.screen_pop`` (written once the pop is built from the database and queued for the panel). Target: ≤ 50 ms p99.
Results: a table on stdout and a JSON file under var/bench/.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.ami_timing import AmiEvent, AmiEventLog
from benchmarks.panels import Frame, PanelFarm
from benchmarks.probes import Peaks, Sampler, rss_mb
from benchmarks.sipp_load import SippRunner, write_injection
from benchmarks.sos_load import SOS, Bench, Percentiles, _fmt, percentiles
from benchmarks.stack import bench_stack
from benchmarks.staff import AgentPhones, StaffSeed, login_agents, panel_tokens
from tests import harness

TARGET_P99_MS = 50.0


@dataclasses.dataclass(frozen=True)
class Pop:
    linkedid: str
    agent: str
    connect_at: float  # Asterisk's AgentConnect timestamp
    ami_seen_at: float  # this benchmark's AMI reader had the AgentConnect
    queued_at: float | None  # the platform's log line desk.screen_pop: built and queued for the panel
    received_at: float | None  # the agent's panel had the screen_pop frame; None: never (within the run)
    size: int | None  # bytes of the frame

    def ms(self, end: float | None, start: float | None) -> float:
        return math.inf if end is None or start is None else (end - start) * 1000


@dataclasses.dataclass
class PopRun:
    rate: float
    planned: int
    attempted: int
    successful: int
    failed: int
    agent_connects: int  # calls the queue connected to an agent's phone
    pops_received: int  # ... whose pop reached that agent's panel
    misdelivered: int  # screen_pop frames that reached a panel of another user (must be 0)
    latency_ms: Percentiles  # AgentConnect → frame received
    connect_to_queued_ms: Percentiles  # AgentConnect → the platform logged the pop (AMI + database + enqueue)
    queued_to_panel_ms: Percentiles  # that log line → frame received (send, network, the panel's loop)
    ami_lag_ms: Percentiles  # AgentConnect → this benchmark's own AMI session had it (Asterisk's AMI delivery)
    frame_bytes: Percentiles
    settle_seconds: float
    peaks: Peaks
    errors: str = ""
    pops: list[Pop] = dataclasses.field(default_factory=list)  # every pop's timestamps, for a closer look

    @property
    def within_target(self) -> bool | None:
        p99 = self.latency_ms.p99
        return None if self.latency_ms.count == 0 else p99 is not None and p99 <= TARGET_P99_MS


def platform_pops(log: Path | None) -> dict[tuple[str, str], float]:
    """(linkedid, agent) → when the platform logged ``desk.screen_pop`` (the pop built and queued)."""
    found: dict[tuple[str, str], float] = {}
    if log is None or not log.exists():
        return found
    with log.open(errors="replace") as lines:
        for line in lines:
            if '"desk.screen_pop"' not in line:
                continue
            try:
                entry = json.loads(line)
                at = dt.datetime.fromisoformat(entry["timestamp"]).timestamp()
            except (ValueError, KeyError):
                continue
            found.setdefault((str(entry.get("linkedid")), str(entry.get("agent"))), at)
    return found


def match_pops(connects: Sequence[AmiEvent], frames: Sequence[Frame], queued: dict[tuple[str, str], float],
               ) -> list[Pop]:
    first: dict[tuple[str, str], Frame] = {}
    for frame in frames:
        if frame.type == "screen_pop":
            first.setdefault((str(frame.message.get("linkedid")), frame.username), frame)
    pops = []
    for event in connects:
        key = (event.get("Linkedid"), event.get("MemberName"))
        frame = first.get(key)
        pops.append(Pop(key[0], key[1], event.at, event.received, queued.get(key),
                        frame.at if frame else None, frame.size if frame else None))
    return pops


class DeskBench(Bench):
    def __init__(self, stack: harness.Stack, runner: SippRunner, events: AmiEventLog, farm: PanelFarm,
                 phones: AgentPhones) -> None:
        super().__init__(stack, runner)
        self.events = events
        self.farm = farm
        self.phones = phones

    def pids(self) -> dict[str, int | None]:
        return {**super().pids(), "phones": self.phones.pid, "panels": self.farm.pid, "bench": os.getpid()}

    def pops(self, rate: float, calls: int, hold_ms: int) -> PopRun:
        ami_mark, farm_mark = self.events.mark(), self.farm.mark()
        with Sampler(self.stack.runtime, self.pids, self.recordings) as sampler:
            sipp = self.runner.run(SOS, rate=rate, calls=calls, hold_ms=hold_ms,
                                   limit=max(10, int(rate * (hold_ms / 1000 + 10))))
            settle = self.settle()
        connects = [e for e in self.events.since(ami_mark) if e.name == "AgentConnect"]
        frames = self.farm.since(farm_mark)
        pops = match_pops(connects, frames, platform_pops(self.stack.platform_log))
        received = [p for p in pops if p.received_at is not None]
        misdelivered = sum(1 for f in frames if f.type == "screen_pop" and f.message.get("agent") != f.username)
        return PopRun(
            rate=rate, planned=calls, attempted=sipp.attempted, successful=sipp.successful, failed=sipp.failed,
            agent_connects=len(pops), pops_received=len(received), misdelivered=misdelivered,
            latency_ms=percentiles([p.ms(p.received_at, p.connect_at) for p in pops]),
            connect_to_queued_ms=percentiles([p.ms(p.queued_at, p.connect_at) for p in pops]),
            queued_to_panel_ms=percentiles([p.ms(p.received_at, p.queued_at) for p in received]),
            ami_lag_ms=percentiles([p.ms(p.ami_seen_at, p.connect_at) for p in pops]),
            frame_bytes=percentiles([float(p.size) for p in received if p.size is not None]),
            settle_seconds=settle, peaks=sampler.peaks,
            errors="" if sipp.failed == 0 and sipp.returncode == 0 else sipp.errors, pops=pops,
        )


# -- report ---------------------------------------------------------------------------------------------------------

def _pct4(p: Percentiles) -> str:
    return f"{_fmt(p.p50, 1)}/{_fmt(p.p95, 1)}/{_fmt(p.p99, 1)}/{_fmt(p.max, 1)}"


HEADER = (f"{'cps':>4} {'calls ok':>9} {'fail':>4} {'connects':>8} {'pops':>5} {'AgentConnect→frame ms':>24} "
          f"{'→logged p50/p99':>16} {'logged→panel p50/p99':>20} {'AMI lag p50/p99':>16} "
          f"{'plat%':>5} {'ffm%':>5} {'ast%':>5} {'pan%':>5} {'oth%':>5} {'RSS MB':>6}")
LEGEND = ("AgentConnect→frame: p50/p95/p99/max ('-': a pop that never arrived); →logged: AgentConnect → the platform's "
          "desk.screen_pop log line;\nlogged→panel: that line → frame received; AMI lag: AgentConnect → this "
          "benchmark's own AMI session had the event;\n%: CPU of one core, mean over the run (ffm: the ffmpeg runs of "
          "the platform's recording pipeline; pan: the panels' process; oth: everything else on the machine)")


def row(run: PopRun) -> str:
    cpu = run.peaks.cpu_percent
    return (f"{run.rate:>4g} {run.successful:>4}/{run.attempted:<4} {run.failed:>4} {run.agent_connects:>8} "
            f"{run.pops_received:>5} {_pct4(run.latency_ms):>24} "
            f"{_fmt(run.connect_to_queued_ms.p50, 1):>7}/{_fmt(run.connect_to_queued_ms.p99, 1):<8} "
            f"{_fmt(run.queued_to_panel_ms.p50, 1):>9}/{_fmt(run.queued_to_panel_ms.p99, 1):<10} "
            f"{_fmt(run.ami_lag_ms.p50, 1):>7}/{_fmt(run.ami_lag_ms.p99, 1):<8} "
            f"{_fmt(cpu.get('platform')):>5} {_fmt(cpu.get('platform children')):>5} {_fmt(cpu.get('asterisk')):>5} "
            f"{_fmt(cpu.get('panels')):>5} "
            f"{_fmt(cpu.get('other')):>5} {run.peaks.platform_rss_mb:>6.0f}")


def verdicts(runs: list[PopRun], panels: int) -> dict[str, Any]:
    return {
        "panels_connected": panels,
        "target_p99_ms": TARGET_P99_MS,
        "p99_ms_by_rate": {f"{r.rate:g}": r.latency_ms.p99 for r in runs},
        "target_met_by_rate": {f"{r.rate:g}": r.within_target for r in runs},
        "pops_missing": sum(r.agent_connects - r.pops_received for r in runs),
        "pops_misdelivered": sum(r.misdelivered for r in runs),
    }


# -- main -----------------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.desk_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panels", type=int, default=500, help="panels connected: one per staff account, "
                                                                "agents and supervisors (default 500)")
    parser.add_argument("--supervisors", type=int, default=50,
                        help="how many of the panels are supervisors' (default 50); the rest are agents'")
    parser.add_argument("--logged-in", type=int, help="agents logged in to the queues with their phone "
                                                      "(default: every agent)")
    parser.add_argument("--rates", type=lambda t: [float(v) for v in t.split(",") if v.strip()],
                        default=[1.0, 2.0, 5.0], help="SOS calls per second, one run each (default 1,2,5)")
    parser.add_argument("--calls", type=int, default=200, help="SOS calls per rate (default 200)")
    parser.add_argument("--hold-ms", type=int, default=5000,
                        help="the device hangs up this long after its answer (default 5000)")
    parser.add_argument("--ring-ms", type=int, default=300, help="agents' phones ring this long (default 300)")
    parser.add_argument("--devices", type=int, default=50, help="synthetic elders with a device (default 50)")
    report.add_common_arguments(parser, "desk_load", "about 90 s: 100 panels (10 supervisors), 40 calls at 2/s")
    args = parser.parse_args(argv)
    if args.quick:
        args.panels, args.supervisors, args.rates, args.calls = 100, 10, [2.0], 40
    if not 0 <= args.supervisors < args.panels:
        parser.error("--supervisors must leave at least one agent's panel")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command, started = report.start("desk_load", argv)
    staff = StaffSeed(agents=args.panels - args.supervisors, supervisors=args.supervisors)
    runs: list[PopRun] = []
    setup: dict[str, Any] = {}
    print(f"[bench] {command}: starting a stack ({args.panels - args.supervisors} agents with phones, "
          f"{args.supervisors} supervisors, {args.devices} devices, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'})", flush=True)
    with bench_stack(args.devices, args.postgres, seed=staff) as (stack, credentials):
        setup["asterisk"] = stack.runtime.version() or ""
        workdir = stack.settings.data_dir / "sipp"
        runner = SippRunner(stack, write_injection(workdir / "devices.csv", credentials), workdir)
        events = AmiEventLog(stack.settings, {"AgentConnect"})
        phones = AgentPhones(stack, staff.agents, workdir / "phones", args.ring_ms)
        try:
            events.start()
            began = time.monotonic()
            phones.start()
            logged_in = staff.agents[:args.logged_in] if args.logged_in is not None else staff.agents
            failures = login_agents(stack, [a.username for a in logged_in], stack.token())
            if failures:
                raise RuntimeError(f"{len(failures)} agents could not log in, e.g. {failures[:3]}")
            setup["agents_logged_in"] = len(logged_in)
            setup["phones_and_login_seconds"] = round(time.monotonic() - began, 1)
            platform_pid = stack.platform.pid if stack.platform is not None else None
            setup["platform_rss_mb_before_panels"] = round(rss_mb(platform_pid) or 0.0, 1)
            ws_url = f"ws://{stack.settings.http.host}:{stack.settings.http.port}/ws"
            print(f"[bench] {len(logged_in)} agents' phones registered and logged in "
                  f"({setup['phones_and_login_seconds']} s); connecting {args.panels} panels", flush=True)
            with PanelFarm(ws_url, panel_tokens(stack, staff.members)) as farm:
                if farm.stats.connected < args.panels:
                    raise RuntimeError(f"only {farm.stats.connected}/{args.panels} panels connected: "
                                       f"{farm.stats.connect_errors}")
                time.sleep(2)
                setup["platform_rss_mb_with_panels"] = round(rss_mb(platform_pid) or 0.0, 1)
                print(f"[bench] {farm.stats.connected} panels connected in {farm.stats.connect_seconds} s; platform "
                      f"RSS {setup['platform_rss_mb_before_panels']:.0f} → "
                      f"{setup['platform_rss_mb_with_panels']:.0f} MB", flush=True)
                bench = DeskBench(stack, runner, events, farm, phones)
                print("[bench] warming up (10 calls at 2/s, not reported)", flush=True)
                bench.pops(2, 10, 2000)
                print(f"\n{HEADER}\n{LEGEND}", flush=True)
                for rate in args.rates:
                    run = bench.pops(rate, args.calls, args.hold_ms)
                    runs.append(run)
                    print(row(run), flush=True)
                    if run.errors:
                        print("      SIPp errors (tail):\n" + run.errors[-800:], flush=True)
            setup["panels"] = dataclasses.asdict(farm.stats)
            if events.error:
                print(f"[bench] AMI reader: {events.error}", flush=True)
        finally:
            events.stop()
            phones.stop()
            runner.stop()
    result = {
        **report.header(command, started, args, setup.pop("asterisk", "")),
        "setup": setup,
        "verdicts": verdicts(runs, setup.get("panels", {}).get("connected", 0)),
        "runs": [dataclasses.asdict(r) for r in runs],
    }
    print("\n[bench] panels: frames by type " + json.dumps(setup.get("panels", {}).get("frames_by_type", {}))
          + ", by role " + json.dumps(setup.get("panels", {}).get("frames_by_role", {}))
          + f", closed by the platform: {len(setup.get('panels', {}).get('closed_by_server', []))}")
    return report.finish("desk_load", result, args.output)


if __name__ == "__main__":
    report.run(main)
