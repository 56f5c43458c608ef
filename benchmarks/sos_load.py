"""SOS under load (issue 3's speed targets): `make bench`, or `.venv/bin/python -m benchmarks.sos_load --help`.

1. Rising call rates. At each rate SIPp presses the red button for ``--step-seconds``: first into the baseline
   (`sos-baseline`: Answer, MixMonitor, Queue — no FastAGI), then into the real `sos`. Per call: the SIP answer
   time (authenticated INVITE → 200 OK, SIPp) and the answer → emergency-queue delay (Asterisk's AMI
   timestamps; the SOS AGI runs between the two). The platform's added latency is sos minus baseline, at p50
   and p95. After each run the database must hold one emergency work order per answered SOS call.
2. Holding: SOS calls at a moderate rate that stay on the line until ``N`` are up at once, each recorded
   (MixMonitor) and waiting in the emergency queue; peak resident memory of the platform and Asterisk.

Nothing answers the queue: callers hear the hold music for the whole call, the answer target is set far out so
no call overflows mid-measurement. Results: a table on stdout and a JSON file under var/bench/.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

from benchmarks import report
from benchmarks.ami_timing import AmiTimings
from benchmarks.mqtt_devices import PublisherStats, ReadingPublishers, device_ids, provision
from benchmarks.probes import Peaks, Sampler, active_channels, rss_mb
from benchmarks.sipp_load import CallCounts, SippRun, SippRunner, write_injection
from benchmarks.stack import BASELINE_EXTEN, Counts, bench_stack, count_rows
from callcenter.asterisk.render import recordings_spool
from tests import harness

SOS = "sos"
TARGET_ADDED_P95_MS = 30.0
TARGET_RATE = 20.0
TARGET_CONCURRENT = 300
TARGET_RSS_MB = 300.0
BACKGROUND_SECONDS = 3600.0  # the bound of a background ingest; it is stopped when the measurements end


@dataclasses.dataclass
class Percentiles:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclasses.dataclass
class ServiceRun(CallCounts):
    answer_ms: Percentiles  # authenticated INVITE → 200 OK, at SIPp
    queue_ms: Percentiles  # channel Up → QueueCallerJoin, Asterisk's timestamps; None: beyond the hang-up
    unqueued: int  # answered, but the caller hung up before reaching the emergency queue (no agent could take it)
    orders_created: int
    sos_calls_logged: int
    lost_orders: int  # answered SOS calls without an emergency work order (always 0 for the baseline)
    settle_seconds: float  # after SIPp ended: until no channel is left and the call log has closed every call
    peaks: Peaks
    errors: str = ""

    @property
    def ok(self) -> bool:
        return self.complete and self.unqueued == 0

    @property
    def complete(self) -> bool:
        """No failed call and no lost work order (the issue's words), whether or not every call got queued."""
        return self.failed == 0 and self.attempted == self.planned and self.lost_orders == 0


@dataclasses.dataclass
class Step:
    rate: float
    baseline: ServiceRun
    sos: ServiceRun

    @property
    def ok(self) -> bool:
        return self.baseline.ok and self.sos.ok

    @property
    def complete(self) -> bool:
        return self.baseline.complete and self.sos.complete

    def added(self, metric: str, pct: str) -> float | None:
        sos, base = getattr(getattr(self.sos, metric), pct), getattr(getattr(self.baseline, metric), pct)
        return None if sos is None or base is None else round(sos - base, 1)


@dataclasses.dataclass
class Hold:
    target: int
    rate: float
    hold_seconds: float
    run: ServiceRun

    @property
    def held(self) -> bool:
        return self.run.ok and self.run.peaks.channels >= self.target and self.run.peaks.recordings >= self.target


def percentiles(values: Sequence[float]) -> Percentiles:
    """Nearest-rank percentiles; an infinite value (a call never queued) makes the percentiles it reaches None."""
    if not values:
        return Percentiles(0, None, None, None, None)
    ordered = sorted(values)

    def rank(p: float) -> float | None:
        value = ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
        return None if math.isinf(value) else round(value, 1)

    return Percentiles(len(ordered), rank(50), rank(95), rank(99), rank(100))


class Bench:
    def __init__(self, stack: harness.Stack, runner: SippRunner | None, timings: AmiTimings | None = None) -> None:
        self.stack = stack
        self.runner = runner
        self.timings = timings

    def pids(self) -> dict[str, int | None]:
        platform_process = self.stack.platform
        return {"platform": platform_process.pid if platform_process is not None else None,
                "asterisk": self.stack.runtime.pid(), "sipp": self.runner.pid if self.runner else None, "machine": 0}

    def counts(self) -> Counts:
        return self.stack.query(count_rows)  # type: ignore[no-any-return]

    def recordings(self) -> set[str]:
        """The recordings in Asterisk's spool: being written, or waiting for the pipeline to store them."""
        spool = self.stack.runtime.host_path(recordings_spool(self.stack.runtime))
        return {path.name for path in spool.glob("*.wav")} if spool.is_dir() else set()

    def settle(self, timeout: float = 90.0) -> float:
        """Wait until Asterisk has no channel left and the platform has closed every call in its log."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if active_channels(self.stack.runtime) == 0 and self.counts().in_progress == 0:
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        # Leftovers would distort the next run: end them, and say so in the figures (settle = timeout).
        self.stack.runtime.cli("channel request hangup all", check=False)
        time.sleep(2)
        return round(timeout, 1)

    def run(self, service: str, *, rate: float, calls: int, hold_ms: int, limit: int) -> ServiceRun:
        assert self.runner is not None and self.timings is not None, "SOS runs need SIPp and the queue timings"
        before = self.counts()
        self.timings.take()
        with Sampler(self.stack.runtime, self.pids, self.recordings) as sampler:
            sipp: SippRun = self.runner.run(service, rate=rate, calls=calls, hold_ms=hold_ms, limit=limit)
            settle = self.settle()
        after = self.counts()
        delays = [math.inf if d.seconds is None else d.seconds * 1000 for d in self.timings.take()
                  if d.exten == service]
        orders = after.emergency_orders - before.emergency_orders
        sos_logged = after.sos_calls - before.sos_calls
        # Baseline calls get an emergency order too, from the platform's QueueCallerJoin safety net (once they are
        # queued, so outside the measured path): only an answered SOS call without one is a lost order.
        lost = max(0, sipp.successful - orders) if service == SOS else 0
        return ServiceRun(
            service=service, rate=rate, planned=calls, attempted=sipp.attempted, successful=sipp.successful,
            failed=sipp.failed, answer_ms=percentiles(sipp.answer_ms), queue_ms=percentiles(delays),
            unqueued=sum(1 for d in delays if math.isinf(d)),
            orders_created=orders, sos_calls_logged=sos_logged, lost_orders=lost, settle_seconds=settle,
            peaks=sampler.peaks,
            errors="" if sipp.failed == 0 and sipp.returncode == 0 else sipp.errors,
        )

    def step(self, rate: float, seconds: float, hold_ms: int) -> Step:
        calls = max(1, round(rate * seconds))
        limit = max(10, int(rate * (hold_ms / 1000 + 10)))
        baseline = self.run(BASELINE_EXTEN, rate=rate, calls=calls, hold_ms=hold_ms, limit=limit)
        sos = self.run(SOS, rate=rate, calls=calls, hold_ms=hold_ms, limit=limit)
        return Step(rate, baseline, sos)

    def hold(self, target: int, rate: float, plateau: float) -> Hold:
        """``target`` SOS calls arriving at ``rate``/s, each held until the last one has been up ``plateau`` s."""
        hold_seconds = target / rate + plateau
        run = self.run(SOS, rate=rate, calls=target, hold_ms=int(hold_seconds * 1000), limit=target)
        return Hold(target, rate, round(hold_seconds, 1), run)


# -- report ---------------------------------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(p: Percentiles) -> str:
    return f"{_fmt(p.p50, 1)}/{_fmt(p.p95, 1)}/{_fmt(p.p99, 1)}"


def run_row(run: ServiceRun) -> str:
    cpu = run.peaks.cpu_percent
    return (f"{run.rate:>5g} {run.service:<12} {run.successful:>5}/{run.attempted:<5} {run.failed:>4} "
            f"{_pct(run.answer_ms):>17} {_pct(run.queue_ms):>17} {run.unqueued:>4} {run.orders_created:>6} "
            f"{run.lost_orders:>4} "
            f"{run.settle_seconds:>6.1f} {run.peaks.channels:>5} {run.peaks.platform_rss_mb:>6.0f} "
            f"{_fmt(cpu.get('platform')):>5} {_fmt(cpu.get('asterisk')):>5} {_fmt(cpu.get('sipp')):>5} "
            f"{_fmt(cpu.get('other')):>5} "
            f"{run.peaks.load1:>5.2f}")


RUN_HEADER = (f"{'cps':>5} {'dialled':<12} {'ok/tried':>11} {'fail':>4} {'INVITE→200 ms':>14} "
              f"{'answer→queue':>14} {'orders':>6} {'lost':>4} {'settle':>6} {'chans':>5} {'RSS MB':>6} "
              f"{'plat%':>5} {'ast%':>5} {'sipp%':>5} {'oth%':>5} {'load':>5}")
RUN_LEGEND = ("latencies p50/p95/p99 in ms ('-': beyond the hang-up); unq: answered but hung up before reaching "
              "the queue;\nlost: answered SOS calls without a work order; RSS: platform peak; %: CPU of one core, "
              "mean over the run (2 cores = 200%);\noth%: everything else on the machine meanwhile")


def print_step(step: Step) -> None:
    print(run_row(step.baseline))
    print(run_row(step.sos))
    print(f"      added by the platform: INVITE→200 p50 {_fmt(step.added('answer_ms', 'p50'), 1)} ms, "
          f"p95 {_fmt(step.added('answer_ms', 'p95'), 1)} ms; answer→queue p50 "
          f"{_fmt(step.added('queue_ms', 'p50'), 1)} ms, p95 {_fmt(step.added('queue_ms', 'p95'), 1)} ms"
          f"{'' if step.ok else '   << ' + shortfall(step)}", flush=True)


def shortfall(step: Step) -> str:
    runs = (step.baseline, step.sos)
    parts = [f"{r.service}: {r.failed} failed" for r in runs if r.failed]
    parts += [f"{r.service}: {r.planned - r.attempted} not attempted" for r in runs if r.attempted < r.planned]
    parts += [f"{r.service}: {r.lost_orders} lost work orders" for r in runs if r.lost_orders]
    parts += [f"{r.service}: {r.unqueued} never queued" for r in runs if r.unqueued]
    return "NOT SUSTAINED (" + "; ".join(parts) + ")"


def verdicts(steps: list[Step], holds: list[Hold], peak_rss: float) -> dict[str, Any]:
    def highest(passes: Any) -> float | None:
        best = None
        for step in steps:
            if not passes(step):
                break
            best = step.rate
        return best

    def added_p95_within(step: Step) -> bool:
        added = step.added("queue_ms", "p95")
        return step.ok and added is not None and added <= TARGET_ADDED_P95_MS
    at_target = next((s for s in steps if s.rate == TARGET_RATE), None)
    held = [h for h in holds if h.held]
    max_held = max((h.target for h in held), default=None)
    hold_at_target = next((h for h in holds if h.target == TARGET_CONCURRENT), None)
    hold_rss = hold_at_target.run.peaks.platform_rss_mb if hold_at_target is not None else None

    def within(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    return {
        "highest_sustained_rate_cps": highest(lambda s: s.ok),
        "highest_rate_without_failed_calls_or_lost_orders_cps": highest(lambda s: s.complete),
        "highest_rate_within_30ms_added_p95_cps": highest(added_p95_within),
        "first_failed_rate_cps": next((s.rate for s in steps if not s.ok), None),
        "added_at_20cps": None if at_target is None else {
            "invite_to_200_p50_ms": at_target.added("answer_ms", "p50"),
            "invite_to_200_p95_ms": at_target.added("answer_ms", "p95"),
            "answer_to_queue_p50_ms": at_target.added("queue_ms", "p50"),
            "answer_to_queue_p95_ms": at_target.added("queue_ms", "p95"),
        },
        "target_added_p95_invite_to_200_met": None if at_target is None else within(
            at_target.added("answer_ms", "p95"), TARGET_ADDED_P95_MS),
        "target_added_p95_answer_to_queue_met": None if at_target is None else within(
            at_target.added("queue_ms", "p95"), TARGET_ADDED_P95_MS),
        "max_concurrent_held": max_held,
        "target_300_concurrent_met": None if hold_at_target is None else hold_at_target.held,
        "platform_peak_rss_mb_holding_300": None if hold_rss is None else round(hold_rss, 1),
        "platform_rss_mb_all_300_up": None if hold_at_target is None
        else round(hold_at_target.run.peaks.platform_rss_mb_most_channels, 1),
        "target_rss_under_300mb_met": None if hold_rss is None else hold_rss < TARGET_RSS_MB,
        "platform_peak_rss_mb_whole_run": round(peak_rss, 1),
    }


# -- main -----------------------------------------------------------------------------------------------------------

def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def background_ingest(stack: harness.Stack, rate: float) -> ReadingPublishers:
    """Every seeded device publishing readings over MQTT at ``rate`` a second in all, until stopped."""
    assert stack.mqtt is not None
    devices = provision(stack.mqtt, stack.query(device_ids))
    return ReadingPublishers(stack.mqtt.bind.port, devices, rate, BACKGROUND_SECONDS, tag="bg").__enter__()


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sos_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=_floats, default=_floats("5,10,20,30,40,60,80,100"),
                        help="calls per second, rising; stops after the first rate with a failure "
                             "(default 5,10,20,30,40,60,80,100)")
    parser.add_argument("--step-seconds", type=float, default=12.0,
                        help="how long each rate runs, per dialplan (default 12)")
    parser.add_argument("--hold-ms", type=int, default=2000, help="how long each call of a rate step stays up "
                                                                  "after the answer (default 2000)")
    parser.add_argument("--concurrency", type=_ints, default=_ints("300,500"),
                        help="SOS calls to hold at once, rising; stops after the first not held (default 300,500)")
    parser.add_argument("--concurrency-rate", type=float, default=10.0,
                        help="arrival rate while building up the held calls (default 10/s)")
    parser.add_argument("--plateau-seconds", type=float, default=30.0,
                        help="how long all held calls stay up together (default 30)")
    parser.add_argument("--devices", type=int, default=50, help="synthetic devices seeded (default 50)")
    parser.add_argument("--background-readings", type=float, default=0.0, metavar="RATE",
                        help="readings a second offered over MQTT by every device meanwhile, from the warm-up's "
                             "end to the last measurement (issue 15; default 0: none)")
    report.add_common_arguments(parser, "sos_load",
                                "about 2 minutes: rates 5,20 for 6 s each, 100 held calls with a 10 s plateau")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.step_seconds, args.concurrency, args.plateau_seconds = [5.0, 20.0], 6.0, [100], 10.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command, started = report.start("sos_load", argv)
    steps: list[Step] = []
    holds: list[Hold] = []
    idle_rss = peak_rss = 0.0
    asterisk_version = ""
    background: ReadingPublishers | None = None
    ingest: PublisherStats | None = None
    print(f"[bench] {command}: starting a stack ({args.devices} devices, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'})", flush=True)
    with bench_stack(args.devices, args.postgres) as (stack, credentials):
        asterisk_version = stack.runtime.version() or ""
        workdir = stack.settings.data_dir / "sipp"
        runner = SippRunner(stack, write_injection(workdir / "devices.csv", credentials), workdir)
        timings = AmiTimings(stack.settings)
        timings.start()
        bench = Bench(stack, runner, timings)
        try:
            print("[bench] warming up (20 calls each way, not reported)", flush=True)
            bench.step(5, 4, 1000)
            idle_rss = rss_mb(bench.pids()["platform"]) or 0.0
            if args.background_readings > 0:
                background = background_ingest(stack, args.background_readings)
                print(f"[bench] background ingest: {args.background_readings:g} readings/s offered over MQTT by "
                      f"{len(background.args[1])} devices", flush=True)
            print(f"[bench] platform RSS after warm-up: {idle_rss:.0f} MB\n\n{RUN_HEADER}\n{RUN_LEGEND}", flush=True)
            for rate in args.rates:
                step = bench.step(rate, args.step_seconds, args.hold_ms)
                steps.append(step)
                print_step(step)
                # Past the first rate not sustained, one more tells whether calls or orders get lost too.
                if not step.complete or (len(steps) >= 2 and not steps[-2].ok):
                    for run in (step.baseline, step.sos):
                        if run.errors:
                            print(f"      {run.service} errors (tail):\n" + run.errors[-800:], flush=True)
                    break
            for target in args.concurrency:
                print(f"\n[bench] holding {target} SOS calls (arriving at {args.concurrency_rate:g}/s, "
                      f"{args.plateau_seconds:g} s all up together, recorded)", flush=True)
                hold = bench.hold(target, args.concurrency_rate, args.plateau_seconds)
                holds.append(hold)
                print(run_row(hold.run))
                print(f"      peak channels {hold.run.peaks.channels}, recordings at once {hold.run.peaks.recordings}, "
                      f"platform peak RSS {hold.run.peaks.platform_rss_mb:.0f} MB "
                      f"({hold.run.peaks.platform_rss_mb_most_channels:.0f} MB with all up), Asterisk peak RSS "
                      f"{hold.run.peaks.asterisk_rss_mb:.0f} MB: {'HELD' if hold.held else 'NOT HELD'}", flush=True)
                if not hold.held:
                    if hold.run.errors:
                        print("      errors (tail):\n" + hold.run.errors[-800:], flush=True)
                    break
            if timings.error:
                print(f"[bench] AMI timing reader: {timings.error}", flush=True)
        finally:
            if background is not None:
                ingest = background.stop()
                background.__exit__()
                print(f"[bench] background ingest: {ingest.published} readings published, {ingest.stored} stored "
                      f"({ingest.stored_rate:.1f}/s stored; offered {args.background_readings:g}/s)", flush=True)
            timings.stop()
            runner.stop()
        runs = [r for s in steps for r in (s.baseline, s.sos)] + [h.run for h in holds]
        peak_rss = max([idle_rss, *(r.peaks.platform_rss_mb for r in runs)])
    result = {
        **report.header(command, started, args, asterisk_version),
        "platform_rss_mb_after_warmup": round(idle_rss, 1),
        "verdicts": verdicts(steps, holds, peak_rss),
        "background_readings": None if ingest is None else {
            "offered_per_second": args.background_readings, "published": ingest.published, "stored": ingest.stored,
            "stored_per_second": round(ingest.stored_rate, 1),
            "ack_ms": dataclasses.asdict(percentiles(ingest.ack_ms))},
        "steps": [{"rate": s.rate, "ok": s.ok, "complete": s.complete, "baseline": dataclasses.asdict(s.baseline),
                   "sos": dataclasses.asdict(s.sos),
                   "added_ms": {"invite_to_200_p50": s.added("answer_ms", "p50"),
                                "invite_to_200_p95": s.added("answer_ms", "p95"),
                                "answer_to_queue_p50": s.added("queue_ms", "p50"),
                                "answer_to_queue_p95": s.added("queue_ms", "p95")}} for s in steps],
        "holds": [{"target": h.target, "rate": h.rate, "hold_seconds": h.hold_seconds, "held": h.held,
                   "run": dataclasses.asdict(h.run)} for h in holds],
    }
    return report.finish("sos_load", result, args.output)


if __name__ == "__main__":
    report.run(main)
