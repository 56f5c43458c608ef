"""A benchmark stack assembled exactly as the integration fixture does (tests/integration/conftest.py), plus
synthetic devices and the baseline dialplan (extensions_bench.conf) that queues an SOS without FastAGI."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

from sqlalchemy import func, select

from callcenter.asterisk.render import recordings_spool, render
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.config import PROJECT_ROOT, Settings
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.elders.models import Elder, LivingSituation
from callcenter.ivr.flows import load_flows
from callcenter.ivr.prompts import build_prompts, install_prompts, prompts_dir
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.users.passwords import sip_ha1
from tests import harness

BENCH_DIR = PROJECT_ROOT / "var" / "bench"
BASELINE_EXTEN = "sos-baseline"
# RTP for hundreds of calls (an even port per call leg, RTCP on the odd one); apart from SIPp's media ports
# (harness.SIPP_MEDIA_PORTS) and below the kernel's ephemeral range.
RTP_RANGE = (harness.ASTERISK_RTP_PORTS.start, harness.ASTERISK_RTP_PORTS.start + 3999)


@dataclasses.dataclass(frozen=True)
class Credentials:
    user: str
    password: str


@dataclasses.dataclass(frozen=True)
class Counts:
    emergency_orders: int
    sos_calls: int
    calls: int
    in_progress: int  # calls the platform has not seen end yet


def baseline_dialplan(runtime: AsteriskRuntime) -> str:
    """cc-sos minus the FastAGI: answer, record from the first second, straight into the emergency queue.

    Same queue, same MixMonitor and the same UserEvent before Queue, so the only difference a caller can meet is
    the platform's `sos` AGI (identification, call log, emergency work order).
    """
    spool = recordings_spool(runtime)
    return f"""; Written by benchmarks/sos_load.py for one benchmark run; not part of the platform's configuration.
[bench-baseline]
exten => s,1,Answer()
 same => n,Set(CC_REC_SERIAL=BENCH-${{STRFTIME(${{EPOCH}},GMT,%Y%m%d%H%M%S)}}-${{FILTER(0-9,${{CHANNEL(linkedid)}})}})
 same => n,MixMonitor({spool}/${{CC_REC_SERIAL}}.wav)
 same => n,Set(QUEUE_PRIO=100)
 same => n,UserEvent(CcBenchStep,Step: emergency-queue)
 same => n,Queue(emergency)
 same => n,Hangup(16)

; Appended to the devices' context defined in extensions.conf (the config parser's "(+)" adds to a category).
[from-devices](+)
exten => {BASELINE_EXTEN},1,Goto(bench-baseline,s,1)
"""


def bench_environment(data_dir: Path, database: str) -> dict[str, str]:
    env = harness.stack_environment(data_dir, database)
    env.update({
        "CC_RTP_START": str(RTP_RANGE[0]),
        "CC_RTP_END": str(RTP_RANGE[1]),
        # Nobody answers: callers wait in the emergency queue for the whole hold, never overflow mid-measurement.
        "CC_SOS_ANSWER_TIMEOUT": "600",
        "CC_SOS_OVERFLOW_TIMEOUT": "600",
        # SIPp's devices play 7 s of speech, then send no packets while held: past CC_DEVICE_RTP_TIMEOUT (60 s)
        # Asterisk would hang them up as dead lines, which is what a silent device is, not what is measured here.
        "CC_DEVICE_RTP_TIMEOUT": "600",
        "CC_ASTERISK_INSTANCE": f"bench-{env['CC_ASTERISK_INSTANCE'].removeprefix('test-')}",
    })
    # Whether readings have a process of their own (auto: on with PostgreSQL), to compare both ways on PostgreSQL.
    if "CC_TELEMETRY_PROCESS" in os.environ:
        env["CC_TELEMETRY_PROCESS"] = os.environ["CC_TELEMETRY_PROCESS"]
    return env


async def seed_devices(db: Database, count: int) -> list[Credentials]:
    """``count`` elders, each with a one-touch device ``bench-dev-NNNN`` (password known to SIPp)."""
    credentials = [Credentials(f"bench-dev-{n:04d}", f"bench-secret-{n:04d}") for n in range(1, count + 1)]
    async with db.transaction() as session:
        for n, cred in enumerate(credentials, start=1):
            elder = Elder(full_name=f"压测老人{n:04d}", phone=f"1770100{n:04d}", address=f"压测社区 {n} 号",
                          community="压测社区", living_situation=LivingSituation.ALONE, care_level=2)
            session.add(elder)
            await session.flush()
            session.add(Device(elder_id=elder.id, kind=DeviceKind.ONE_TOUCH, sip_username=cred.user,
                               sip_ha1=sip_ha1(cred.user, cred.password), phone_number=f"1770200{n:04d}"))
    return credentials


async def count_rows(db: Database) -> Counts:
    async with db.transaction() as session:
        orders = await session.scalar(select(func.count()).select_from(WorkOrder)
                                      .where(WorkOrder.kind == WorkOrderKind.EMERGENCY))
        sos = await session.scalar(select(func.count()).select_from(Call).where(Call.kind == CallKind.SOS))
        calls = await session.scalar(select(func.count()).select_from(Call))
        open_calls = await session.scalar(select(func.count()).select_from(Call)
                                          .where(Call.disposition == Disposition.IN_PROGRESS))
    return Counts(int(orders or 0), int(sos or 0), int(calls or 0), int(open_calls or 0))


def _built_prompts() -> Path:
    """The IVR prompts (the SOS hold music starts with one), built once and kept between runs (incremental)."""
    out = BENCH_DIR / "prompts"
    build_prompts(load_flows().prompts, out)
    return out


@contextlib.contextmanager
def bench_stack(device_count: int, postgres_url: str | None = None, *,
                seed: Callable[[Database], Awaitable[object]] | None = None,
                environment: Mapping[str, str] | None = None,
                ) -> Iterator[tuple[harness.Stack, list[Credentials]]]:
    """Migrate, seed, build/install prompts, render (+ the baseline file), start Asterisk, the devices' Mosquitto and
    the platform.

    ``seed(db)``, when given, runs after the devices are seeded and before the configuration is rendered (staff
    with phones: their endpoints are in the first rendering). ``environment`` adds to or overrides the stack's
    CC_ settings (a benchmark's own: the outbound engine's caps, …).

    Everything is stopped and the Asterisk instance removed on the way out, whatever happened.
    """
    harness.require_tools()
    data_dir = BENCH_DIR / "run"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    backend = "sqlite"
    if postgres_url:
        os.environ[harness.POSTGRES_ENV] = postgres_url
        backend = "postgresql"
    prompts = _built_prompts()
    with harness.database_url(backend, data_dir) as url:
        env = {**bench_environment(data_dir, url), **(environment or {})}
        settings = Settings.from_env(env)
        harness.migrated_database(settings.database_url)
        runtime = harness.start_asterisk(settings)
        stack = harness.Stack(settings=settings, env=env, runtime=runtime)
        try:
            credentials = stack.query(lambda db: seed_devices(db, device_count))
            if seed is not None:
                stack.query(seed)
            shutil.copytree(prompts, prompts_dir(settings))
            install_prompts(settings, runtime)
            etc = stack.query(lambda db: render(settings, runtime, db))
            (etc / "extensions_bench.conf").write_text(baseline_dialplan(runtime), encoding="utf-8")
            runtime.start()
            stack.mqtt = harness.start_mosquitto(settings)
            stack.start_platform()
            stack.wait_healthy()
            yield stack, credentials
        finally:
            stack.stop_platform()
            if stack.mqtt is not None:
                stack.mqtt.stop()
            harness.remove_instance(runtime)
