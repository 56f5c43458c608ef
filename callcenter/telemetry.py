"""The telemetry process: device readings taken apart from the red button (issue 15).

Readings may come in thousands a second; an SOS must never wait behind them. With CC_TELEMETRY_PROCESS=on (PostgreSQL
and MQTT), the platform's process lets go of the subscriptions plugins mark ``telemetry``
(``contract.on_mqtt_batch(..., telemetry=True)``: the readings) and a process of their own takes them:

* ``serve_telemetry`` is that process (``callcenter telemetry``). It loads the same plugins with
  ``PluginContext.process = TELEMETRY_PROCESS`` and runs only those subscriptions, on its own MQTT connection (its own
  account on the managed broker; a persistent session, so what devices publish while it restarts waits for it) as a
  shared subscription (``$share/telemetry/…``: more such processes would share the messages). It starts no job,
  serves no web, owns no AMI or FastAGI socket. It lowers its CPU priority (CC_TELEMETRY_NICE), so when a core is
  contested the platform's process — SOS calls, the panels, device alarms — gets most of it. Alarms it stores (a
  vital sign over its threshold) wake the platform's alarm distributor over MQTT (``alarms.wake``).
* ``TelemetrySupervisor`` (in the platform's process) starts it, starts it again whenever it ends (a crash, a
  kill -9: after 0.5 s, doubling to 5 s while it keeps failing at once), stops it with the platform, and says on
  /healthz whether it runs. The child ends with its parent (``PR_SET_PDEATHSIG``), so a platform killed with -9 leaves
  no process behind to compete with the next one.

Only with PostgreSQL: SQLite has one writer, and the write turns that let an SOS write first (``db.session``) exist
only within one process (docs/architecture.md). Without the process (the default), the same subscriptions run in the
platform's process, batched and resting between full batches (``readings.mqtt``). Off by default because on one
two-core machine, where it shares the cores and PostgreSQL with the platform anyway, it was measured slower for both
the SOS and the readings (docs/performance.md); it is the way to take readings on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence

from callcenter.asterisk.render import ami_credentials
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from callcenter.contract import TELEMETRY_PROCESS, Check, Contribution, Plugin, PluginContext
from callcenter.data_keys import check_keys_open_data, platform_keyring
from callcenter.db.migrate import current_revision, head_revision
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.mosquitto.choice import BrokerChoice, choose_broker, telemetry_endpoint
from callcenter.telephony.ami import AmiClient
from callcenter.telephony.mqtt import MqttClient

log = get_logger(__name__)

SHARE_GROUP = "telemetry"
STOP_GRACE_SECONDS = 10.0  # after SIGTERM, before SIGKILL
RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 5.0
STEADY_SECONDS = 30.0  # a process that ran this long before it ended is restarted after the shortest delay
_PR_SET_PDEATHSIG = 1


def telemetry_client_id(username: str) -> str:
    """The telemetry process's MQTT client id: fixed (its persistent session), apart from the platform's."""
    return f"{username}-telemetry" if not username.endswith("-telemetry") else username


def load_telemetry(settings: Settings, *, db: Database, ami: AmiClient, mqtt: MqttClient, broker: BrokerChoice,
                   plugins: Sequence[Plugin] | None = None) -> list[tuple[str, Contribution]]:
    """Load ``plugins`` as the telemetry process and give ``mqtt`` their telemetry subscriptions, shared."""
    from callcenter.plugins import PLUGINS, load_plugins

    context = PluginContext(settings=settings, db=db, ami=ami, runtime=AsteriskRuntime.for_settings(settings),
                            mqtt=mqtt, broker=broker, process=TELEMETRY_PROCESS)
    contributions = load_plugins(context, PLUGINS if plugins is None else plugins)
    for name, contribution in contributions:
        for subscription in contribution.mqtt:
            if subscription.process != TELEMETRY_PROCESS:
                continue
            try:
                mqtt.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                               max_batch=subscription.max_batch, share_group=SHARE_GROUP)
            except ValueError as error:
                raise ValueError(f"plugin {name}: {error}") from None
    return contributions


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM when the parent ends; if it has already ended, end now."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit(0)


async def serve_telemetry(settings: Settings, *, parent: int | None = None) -> int:
    """The telemetry process's life: until SIGTERM/SIGINT (or its parent's end). Exit 2: it cannot run here."""
    if parent is not None:
        _die_with_parent(parent)
    with contextlib.suppress(OSError):
        os.nice(settings.telemetry_nice)
    choice = choose_broker(settings)
    endpoint = telemetry_endpoint(settings, choice)
    if endpoint is None:
        log.error("telemetry.no_broker", reason=choice.reason)
        return 2
    current = await current_revision(settings.database_url)
    if current != head_revision():
        log.error("telemetry.schema_out_of_date", current=current, expected=head_revision())
        return 2
    db = Database(settings.database_url, await platform_keyring(settings))
    try:
        await check_keys_open_data(db)
        credentials = ami_credentials(settings)
        # Never started: plugins register AMI handlers at load, and the telemetry process serves none of them.
        ami = AmiClient(settings.ami.host, settings.ami.port, credentials.username, credentials.secret)
        mqtt = MqttClient(endpoint, client_id=telemetry_client_id(endpoint.username),
                          max_payload=settings.mqtt_max_payload_bytes)
        load_telemetry(settings, db=db, ami=ami, mqtt=mqtt, broker=choice)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await mqtt.start()
        log.info("telemetry.started", mqtt=mqtt.label, topic_filters=list(mqtt.topic_filters),
                 nice=os.nice(0), database=db.backend)
        try:
            await stop.wait()
        finally:
            await mqtt.stop()
            log.info("telemetry.stopped")
    finally:
        await db.dispose()
    return 0


class TelemetrySupervisor:
    """Runs ``command`` (the telemetry process) for the platform's life: a job and a health probe."""

    def __init__(self, command: Sequence[str], *, environment: Mapping[str, str] | None = None,
                 restart_delay: float = RESTART_DELAY, max_restart_delay: float = MAX_RESTART_DELAY) -> None:
        self.command = list(command)
        self.environment = dict(environment) if environment is not None else None
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.restarts = 0
        self.last_exit: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._started_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @classmethod
    def for_this_process(cls) -> TelemetrySupervisor:
        """The platform's: this interpreter running ``callcenter telemetry`` with this process's environment (the
        settings come from there) and this process as its parent."""
        return cls([sys.executable, "-m", "callcenter", "telemetry", "--parent", str(os.getpid())])

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="telemetry-supervisor")

    async def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning("telemetry.kill", pid=process.pid, detail=f"not ended {STOP_GRACE_SECONDS:.0f}s after "
                                                                      "SIGTERM")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = self.restart_delay
        while not self._stopping.is_set():
            try:
                self._process = await asyncio.create_subprocess_exec(*self.command, env=self.environment,
                                                                     stdin=asyncio.subprocess.DEVNULL)
            except OSError as error:
                log.error("telemetry.start_failed", error=str(error)[:200], retry_in=delay)
            else:
                self._started_at = time.monotonic()
                log.info("telemetry.process_started", pid=self._process.pid, restarts=self.restarts)
                code = await self._process.wait()
                self.last_exit = code
                if self._stopping.is_set():
                    return
                ran = time.monotonic() - self._started_at
                if ran >= STEADY_SECONDS:
                    delay = self.restart_delay
                log.error("telemetry.process_ended", pid=self._process.pid, exit=code, ran_seconds=round(ran, 1),
                          restart_in=delay)
                self.restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(self.max_restart_delay, delay * 2)

    async def health_checks(self) -> dict[str, Check]:
        """``telemetry_process`` on /healthz. Not critical: SOS calls and device alarms do not depend on it, and
        devices send again the readings it has not answered."""
        facts = {"restarts": self.restarts, "pid": self.pid or 0}
        if self.pid is None:
            why = f"it ended (exit {self.last_exit}) and is being started again" if self.last_exit is not None \
                else "starting"
            return {"telemetry_process": Check(False, f"the telemetry process is not running: {why}", facts=facts)}
        return {"telemetry_process": Check(True, f"running (pid {self.pid}), restarted {self.restarts} times",
                                           facts=facts)}
