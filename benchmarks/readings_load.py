"""Device readings and alarms over MQTT (issue 15): `make bench`, or
`.venv/bin/python -m benchmarks.readings_load --help`.

A real stack (Asterisk, `callcenter serve`, the platform's own Mosquitto on 127.0.0.1, SQLite or PostgreSQL) with
``--devices`` elders, each with a device that has an MQTT account on that broker. Two parts:

1. **Ingest.** ``--rate`` blood-pressure readings a second for ``--seconds``, from real MQTT clients in a process of
   their own (benchmarks/mqtt_devices.py): QoS 1, each device keeping at most ``--window`` readings unanswered, as
   a device keeps a reading until the platform answers ``stored`` (docs/device-protocol.md). Counted: the readings
   answered ``stored`` (their rate, from the first publish to the last answer) and the readings the database holds
   afterwards; the publish → answer time. Every reading is judged against the elder's limits. Target: ≥ 5,000/s.
2. **Alarm → card during ingest.** ``--agents`` agents, each with a registered SIP phone logged in to the queues
   and a signed-in desk (an authenticated WebSocket on /ws, benchmarks/panels.py). While readings arrive at
   ``--alarm-ingest-rate``, devices of their own publish ``--alarms`` fall alarms, ``--alarm-interval`` apart; timed
   from the alarm's MQTT PUBLISH (``time.time()`` just before it left) to the ``alarm_offer`` frame carrying it
   arriving on an agent's desk. The agent then takes and resolves it over REST, so agents stay free. Target:
   ≤ 1 s p99.

Results: a table on stdout and a JSON file under var/bench/.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select

from benchmarks import report
from benchmarks.mqtt_devices import (
    AlarmSender,
    MqttDevice,
    PublisherStats,
    ReadingPublishers,
    device_ids,
    provision,
)
from benchmarks.panels import Frame, PanelFarm
from benchmarks.probes import Peaks, Sampler
from benchmarks.sos_load import Percentiles, percentiles
from benchmarks.stack import bench_stack
from benchmarks.staff import AgentPhones, StaffSeed, login_agents, panel_tokens
from callcenter.db.session import Database
from callcenter.readings.models import Reading
from tests import harness

TARGET_READINGS_PER_SECOND = 5000.0
TARGET_OFFER_P99_MS = 1000.0
OFFER_TIMEOUT = 10.0  # an alarm whose card has not arrived by then is counted as never (infinite)


@dataclasses.dataclass
class IngestRun:
    offered_rate: float
    seconds: float
    devices: int
    published: int
    stored: int  # answered "stored"
    rejected: int
    stored_rate: float  # stored / (last answer - first publish)
    rows_added: int  # readings the database holds more than before
    ack_ms: Percentiles
    peaks: Peaks

    @property
    def within_target(self) -> bool:
        return self.stored_rate >= TARGET_READINGS_PER_SECOND and self.rows_added >= self.stored


@dataclasses.dataclass
class AlarmRun:
    alarms: int
    ingest: IngestRun
    offered: int  # alarms whose alarm_offer reached a desk within OFFER_TIMEOUT
    answered_stored: int  # alarms the platform answered "stored" to the device
    latency_ms: Percentiles  # PUBLISH → alarm_offer on the desk
    resolve_errors: list[str]

    @property
    def within_target(self) -> bool | None:
        p99 = self.latency_ms.p99
        return None if not self.alarms else p99 is not None and p99 <= TARGET_OFFER_P99_MS


async def count_readings(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Reading)) or 0)


Pids = Callable[[], dict[str, int | None]]


def ingest_run(stack: harness.Stack, sampler_pids: Pids, devices: Sequence[MqttDevice], rate: float,
               seconds: float, window: int, tag: str) -> IngestRun:
    assert stack.mqtt is not None
    before = stack.query(count_readings)
    with ReadingPublishers(stack.mqtt.bind.port, devices, rate, seconds, window=window, tag=tag) as publishers, \
            Sampler(stack.runtime, lambda: {**sampler_pids(), "publishers": publishers.pid}, set) as sampler:
        stats = publishers.wait()
    return _ingest(stack, stats, before, rate, seconds, len(devices), sampler.peaks)


def _ingest(stack: harness.Stack, stats: PublisherStats, before: int, rate: float, seconds: float, devices: int,
            peaks: Peaks) -> IngestRun:
    return IngestRun(rate, seconds, devices, stats.published, stats.stored, stats.rejected,
                     round(stats.stored_rate, 1), stack.query(count_readings) - before, percentiles(stats.ack_ms),
                     peaks)


class AlarmBench:
    """Alarms from ``senders`` (one device each, used in turn) timed to their card on an agent's desk."""

    def __init__(self, stack: harness.Stack, farm: PanelFarm, senders: Sequence[AlarmSender],
                 tokens: dict[str, str]) -> None:
        self.stack = stack
        self.farm = farm
        self.senders = senders
        self.tokens = tokens

    def run(self, count: int, interval: float, tag: str) -> tuple[list[float], int, list[str]]:
        latencies: list[float] = []
        stored = 0
        errors: list[str] = []
        began = time.monotonic()
        for n in range(count):
            due = began + n * interval
            if (lag := due - time.monotonic()) > 0:
                time.sleep(lag)
            sender = self.senders[n % len(self.senders)]
            message_id = f"{tag}-{n}"
            mark = self.farm.mark()
            published_at = sender.send(message_id)
            offer: Frame | None = self.farm.wait_for(
                lambda frames, wanted=message_id: next((f for f in frames if f.type == "alarm_offer"
                                                       and f.message.get("device_message_id") == wanted), None),
                OFFER_TIMEOUT, mark)
            answer = sender.answer(message_id, OFFER_TIMEOUT)
            stored += answer is not None and answer.get("status") == "stored"
            if offer is None:
                latencies.append(math.inf)
                continue
            latencies.append((offer.at - published_at) * 1000)
            errors.extend(self._finish(offer))
        return latencies, stored, errors[:20]

    def _finish(self, offer: Frame) -> list[str]:
        """The agent takes the alarm and resolves it (a test), as the desk would: they are free for the next."""
        token = self.tokens[offer.username]
        alarm_id, version = offer.message.get("alarm_id"), offer.message.get("alarm_version")
        status, body = self.stack.api("POST", f"/api/v1/alarms/{alarm_id}/take", {"version": version}, token)
        if status != 200:
            return [f"take {alarm_id}: {status} {str(body)[:120]}"]
        status, body = self.stack.api("POST", f"/api/v1/alarms/{alarm_id}/resolve",
                                      {"version": body["version"], "outcome": "test"}, token)
        return [] if status == 200 else [f"resolve {alarm_id}: {status} {str(body)[:120]}"]


# -- report ---------------------------------------------------------------------------------------------------------

def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


INGEST_HEADER = ("  offered/s  seconds  devices  published  stored  rejected  stored/s  rows added  "
                 "ack p50/p99 ms      platform CPU %  mosquitto CPU %  publishers CPU %  load")


def ingest_row(run: IngestRun) -> str:
    cpu = run.peaks.cpu_percent
    return (f"  {run.offered_rate:9.0f}  {run.seconds:7.0f}  {run.devices:7d}  {run.published:9d}  {run.stored:6d}  "
            f"{run.rejected:8d}  {run.stored_rate:8.1f}  {run.rows_added:10d}  "
            f"{_fmt(run.ack_ms.p50):>7} / {_fmt(run.ack_ms.p99):<8}  {cpu.get('platform', 0):14.0f}  "
            f"{cpu.get('mosquitto', 0):15.0f}  {cpu.get('publishers', 0):16.0f}  {run.peaks.load1:4.1f}")


def alarm_row(run: AlarmRun) -> str:
    lat = run.latency_ms
    return (f"  alarms {run.alarms}, offered on a desk {run.offered}, answered stored {run.answered_stored}; "
            f"PUBLISH → alarm_offer ms p50 {_fmt(lat.p50)} p95 {_fmt(lat.p95)} p99 {_fmt(lat.p99)} "
            f"max {_fmt(lat.max)}; ingest meanwhile {run.ingest.stored_rate:.0f}/s stored "
            f"(offered {run.ingest.offered_rate:.0f}/s)")


def verdicts(ingest: IngestRun | None, alarms: AlarmRun | None) -> dict[str, Any]:
    return {
        "target_readings_per_second": TARGET_READINGS_PER_SECOND,
        "readings_per_second_stored": ingest.stored_rate if ingest else None,
        "readings_target_met": ingest.within_target if ingest else None,
        "target_alarm_offer_p99_ms": TARGET_OFFER_P99_MS,
        "alarm_offer_p99_ms": alarms.latency_ms.p99 if alarms else None,
        "alarm_offer_ms_p50": alarms.latency_ms.p50 if alarms else None,
        "ingest_during_alarms_per_second": alarms.ingest.stored_rate if alarms else None,
        "alarm_target_met": alarms.within_target if alarms else None,
    }


# -- main -----------------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readings_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200, help="devices publishing readings (default 200)")
    parser.add_argument("--rate", type=float, default=5000.0, help="readings offered a second (default 5000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the ingest runs (default 60)")
    parser.add_argument("--window", type=int, default=20,
                        help="readings a device may have unanswered (default 20)")
    parser.add_argument("--agents", type=int, default=10, help="agents with a phone and a desk (default 10)")
    parser.add_argument("--alarms", type=int, default=200, help="alarms timed to the desk (default 200)")
    parser.add_argument("--alarm-interval", type=float, default=0.5,
                        help="seconds between two alarms (default 0.5)")
    parser.add_argument("--alarm-ingest-rate", type=float, help="readings a second meanwhile (default: --rate)")
    report.add_common_arguments(parser, "readings_load", "about 60 s: 1,000/s for 10 s, 20 alarms at 500/s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rate, args.seconds, args.devices, args.agents, args.alarms = 1000.0, 10.0, 50, 4, 20
        args.alarm_ingest_rate = 500.0
    if args.alarm_ingest_rate is None:
        args.alarm_ingest_rate = args.rate
    if args.devices < 1 or args.alarms < 0 or args.agents < 1:
        parser.error("--devices and --agents must be at least 1, --alarms at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command, started = report.start("readings_load", argv)
    alarm_devices = max(1, min(args.alarms, 20))
    staff = StaffSeed(agents=args.agents, supervisors=0)
    setup: dict[str, Any] = {}
    ingest: IngestRun | None = None
    alarms: AlarmRun | None = None
    print(f"[bench] {command}: starting a stack ({args.devices + alarm_devices} devices on MQTT, {args.agents} "
          f"agents, {'PostgreSQL' if args.postgres else 'SQLite'})", flush=True)
    with bench_stack(args.devices + alarm_devices, args.postgres, seed=staff) as (stack, _credentials):
        assert stack.mqtt is not None
        setup["asterisk"] = stack.runtime.version() or ""
        mqtt_devices = provision(stack.mqtt, stack.query(device_ids))
        readers, alarmers = mqtt_devices[:args.devices], mqtt_devices[args.devices:]
        platform_pid = stack.platform.pid if stack.platform is not None else None

        def pids() -> dict[str, int | None]:
            return {"platform": platform_pid, "mosquitto": stack.mqtt.pid() if stack.mqtt else None,
                    "machine": None}

        print("[bench] warming up (200 readings/s for 5 s, not reported)", flush=True)
        ingest_run(stack, pids, readers, 200, 5, args.window, "warm")
        print(f"\n[bench] ingest\n{INGEST_HEADER}", flush=True)
        ingest = ingest_run(stack, pids, readers, args.rate, args.seconds, args.window, "ingest")
        print(ingest_row(ingest), flush=True)
        if args.alarms:
            workdir = stack.settings.data_dir / "sipp"
            phones = AgentPhones(stack, staff.agents, workdir / "phones", 300)
            senders: list[AlarmSender] = []
            try:
                phones.start()
                failures = login_agents(stack, [a.username for a in staff.agents], stack.token())
                if failures:
                    raise RuntimeError(f"{len(failures)} agents could not log in, e.g. {failures[:3]}")
                panels = panel_tokens(stack, staff.agents)
                ws_url = f"ws://{stack.settings.http.host}:{stack.settings.http.port}/ws"
                senders = [AlarmSender(stack.mqtt.bind.port, device) for device in alarmers]
                with PanelFarm(ws_url, panels) as farm:
                    if farm.stats.connected < len(panels):
                        raise RuntimeError(f"only {farm.stats.connected}/{len(panels)} desks connected: "
                                           f"{farm.stats.connect_errors}")
                    bench = AlarmBench(stack, farm, senders, {p.username: p.token for p in panels})
                    print(f"[bench] {len(panels)} agents logged in with a desk; warming up (5 alarms, not "
                          "reported)", flush=True)
                    bench.run(5, args.alarm_interval, f"warm{int(time.time())}")
                    seconds = args.alarms * args.alarm_interval + 5
                    before = stack.query(count_readings)
                    with ReadingPublishers(stack.mqtt.bind.port, readers, args.alarm_ingest_rate, seconds,
                                           window=args.window, tag="during") as publishers, \
                            Sampler(stack.runtime, lambda: {**pids(), "publishers": publishers.pid}, set) as sampler:
                        time.sleep(2)  # the ingest running first
                        latencies, stored, errors = bench.run(args.alarms, args.alarm_interval,
                                                              f"alarm{int(time.time())}")
                        stats = publishers.wait()
                    during = _ingest(stack, stats, before, args.alarm_ingest_rate, seconds, len(readers),
                                     sampler.peaks)
                    alarms = AlarmRun(args.alarms, during, sum(1 for v in latencies if not math.isinf(v)), stored,
                                      percentiles(latencies), errors)
                    print(f"\n[bench] alarms during ingest\n{INGEST_HEADER}\n{ingest_row(during)}\n"
                          f"{alarm_row(alarms)}", flush=True)
                    if errors:
                        print("      take/resolve errors: " + "; ".join(errors[:5]), flush=True)
                setup["desks"] = dataclasses.asdict(farm.stats)
            finally:
                for sender in senders:
                    sender.close()
                phones.stop()
    result = {
        **report.header(command, started, args, setup.pop("asterisk", "")),
        "setup": setup,
        "verdicts": verdicts(ingest, alarms),
        "ingest": dataclasses.asdict(ingest) if ingest else None,
        "alarms": dataclasses.asdict(alarms) if alarms else None,
    }
    return report.finish("readings_load", result, args.output)


if __name__ == "__main__":
    report.run(main)
