"""The running platform: web + REST + WebSocket, the AMI and MQTT clients and the FastAGI server in one asyncio process.

The platform owns the sockets (AMI, FastAGI, MQTT, HTTP) and runs the plugins (``callcenter.plugins``) that make up the
domains: each plugin's ``load`` builds its services and returns what it contributes (``callcenter.contract``), and
this module wires those contributions to the sockets, the web application and the process's life.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from callcenter.api.registry import ApiRoute
from callcenter.api.tokens import TokenService
from callcenter.asterisk.render import ami_credentials
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from callcenter.contract import (
    DEVICE_INTAKES,
    PLATFORM_PROCESS,
    Contribution,
    DeviceIntakes,
    Job,
    Plugin,
    PluginContext,
)
from callcenter.data_keys import check_keys_open_data, platform_keyring
from callcenter.db.keyring import Keyring
from callcenter.db.migrate import current_revision, head_revision
from callcenter.db.session import Database
from callcenter.health.services import HealthService, MqttProbe
from callcenter.logs import get_logger
from callcenter.mosquitto.choice import BrokerChoice, choose_broker
from callcenter.plugins import PLUGINS, load_plugins
from callcenter.telemetry import TelemetrySupervisor
from callcenter.telephony.ami import AmiClient
from callcenter.telephony.fastagi import FastAgiServer
from callcenter.telephony.mqtt import MqttClient
from callcenter.users.services import ensure_admin
from callcenter.web.app import WebParts, create_app

log = get_logger(__name__)


class SchemaOutOfDate(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Assembly:
    """The plugins loaded and wired, nothing started: what ``Platform`` runs, and what tests serve in-process."""

    context: PluginContext
    contributions: tuple[tuple[str, Contribution], ...]
    fastagi: FastAgiServer
    health: HealthService
    web: web.Application
    # The telemetry process's supervisor (CC_TELEMETRY_PROCESS), started by ``Platform``; None: none runs.
    telemetry: TelemetrySupervisor | None = None

    @property
    def jobs(self) -> list[Job]:
        return [job for _, contribution in self.contributions for job in contribution.jobs]

    def service(self, key: web.AppKey[Any]) -> Any:
        return self.context.require(key)


def mqtt_client(settings: Settings, broker: BrokerChoice) -> MqttClient:
    """The platform's MQTT client for ``broker``: one that stays off, saying why, when there is none."""
    if broker.endpoint is None:
        return MqttClient.off(broker.reason)
    return MqttClient(broker.endpoint, max_payload=settings.mqtt_max_payload_bytes)


def assemble(settings: Settings, *, db: Database, ami: AmiClient, mqtt: MqttClient | None = None,
             plugins: Sequence[Plugin] = PLUGINS,
             replacements: Mapping[web.AppKey[Any], Any] | None = None) -> Assembly:
    """Load ``plugins`` in order and wire their contributions. ``mqtt``: the MQTT client (default: one for the
    settings' broker, not started). ``replacements`` stand in for the services provided under those keys (tests swap
    in an S3-backed store, for instance)."""
    broker = choose_broker(settings)
    mqtt = mqtt if mqtt is not None else mqtt_client(settings, broker)
    context = PluginContext(settings=settings, db=db, ami=ami, runtime=AsteriskRuntime.for_settings(settings),
                            mqtt=mqtt, broker=broker, replacements=dict(replacements or {}))
    contributions = load_plugins(context, plugins)
    # With the telemetry process, its subscriptions are its own (shared there); this process lets go of them.
    telemetry = TelemetrySupervisor.for_this_process() \
        if settings.telemetry_in_own_process and mqtt.endpoint is not None else None
    intakes = DeviceIntakes()
    agi = {}
    for name, contribution in contributions:
        for intake in contribution.device_messages:
            try:
                intakes.add(intake)
            except ValueError as error:
                raise ValueError(f"plugin {name}: {error}") from None
        for subscription in contribution.ami:
            ami.subscribe(subscription.events, subscription.handler)
        for callback in contribution.on_ami_login:
            ami.on_login(callback)
        for mqtt_subscription in contribution.mqtt:
            try:
                if telemetry is not None and mqtt_subscription.process != PLATFORM_PROCESS:
                    mqtt.release(mqtt_subscription.topic_filter)
                    continue
                mqtt.subscribe(mqtt_subscription.topic_filter, mqtt_subscription.handler,
                               on_refused=mqtt_subscription.on_refused, max_batch=mqtt_subscription.max_batch)
            except ValueError as error:
                raise ValueError(f"plugin {name}: {error}") from None
        for handler_name, handler in contribution.agi.items():
            if handler_name in agi:
                raise ValueError(f"plugin {name}: AGI handler {handler_name!r} is already registered")
            agi[handler_name] = handler
    context.provide(DEVICE_INTAKES, intakes)  # complete only now: the ingest reads it per request
    # A Mandarin menu with three tries runs past a minute; the limit only stops a handler that is stuck.
    fastagi = FastAgiServer(settings.agi.host, settings.agi.port, agi, handler_timeout=300,
                            allowed_peers=settings.agi_allowed_peers)
    health = HealthService(db, ami, fastagi, ami_label=str(settings.ami), agi_label=str(settings.agi),
                           probes=[MqttProbe(mqtt), *(probe for _, c in contributions for probe in c.probes),
                                   *([telemetry] if telemetry is not None else [])])
    routes: list[ApiRoute] = [route for _, c in contributions for route in c.routes]
    app = create_app(health, WebParts(
        db=db, tokens=TokenService.for_settings(settings), settings=settings, services=context.services,
        routes=routes, pages=[page for _, c in contributions for page in c.pages],
        sections=[section for _, c in contributions for section in c.sections],
        extras=[part for _, c in contributions for part in c.web]))
    return Assembly(context, tuple(contributions), fastagi, health, app, telemetry)


class Platform:
    def __init__(self, settings: Settings, keyring: Keyring) -> None:
        """``keyring``: CC_DATA_KEY_FILE's keys (data_keys.platform_keyring)."""
        self.settings = settings
        self.db = Database(settings.database_url, keyring)
        credentials = ami_credentials(settings)
        self.ami = AmiClient(settings.ami.host, settings.ami.port, credentials.username, credentials.secret)
        self.assembly = assemble(settings, db=self.db, ami=self.ami)
        self.fastagi = self.assembly.fastagi
        self.mqtt = self.assembly.context.mqtt
        self.health = self.assembly.health
        self.web = self.assembly.web
        self._started: list[Job] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        current = await current_revision(self.settings.database_url)
        if current != head_revision():
            raise SchemaOutOfDate(
                f"database schema is at {current or 'nothing'}, code expects {head_revision()}: "
                "run `callcenter db upgrade` first"
            )
        await check_keys_open_data(self.db)
        if self.settings.admin_password:
            async with self.db.transaction() as session:
                if await ensure_admin(session, self.settings.admin_password):
                    log.info("users.admin_bootstrapped")
        # FastAGI first: Asterisk may already be sending calls our way.
        await self.fastagi.start()
        await self.ami.start()
        # Connects in the background; with no broker it only logs why MQTT is off.
        await self.mqtt.start()
        if self.assembly.telemetry is not None:
            await self.assembly.telemetry.start()
        for job in self.assembly.jobs:
            await job.start()
            self._started.append(job)
        self._runner = web.AppRunner(self.web, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.settings.http.host, self.settings.http.port).start()
        # Everything loaded so far lives as long as the process: out of the collector's way, so full collections
        # (which stopped the event loop for 65-128 ms under load, delaying screen-pops) stay short.
        gc.freeze()
        log.info("platform.started", http=str(self.settings.http), agi=str(self.settings.agi),
                 ami=str(self.settings.ami), mqtt=self.mqtt.label, database=self.db.backend,
                 plugins=[name for name, _ in self.assembly.contributions])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Jobs stop in reverse order: nothing stops under a job that still uses it.
        while self._started:
            job = self._started.pop()
            try:
                await job.stop()
            except Exception:  # one job failing to stop must not keep the others (and the sockets) running
                log.exception("platform.job_stop_failed", job=type(job).__name__)
        if self.assembly.telemetry is not None:
            await self.assembly.telemetry.stop()
        await self.mqtt.stop()
        await self.ami.stop()
        await self.fastagi.stop()
        await self.db.dispose()
        log.info("platform.stopped")


async def serve(settings: Settings) -> None:
    platform = Platform(settings, await platform_keyring(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await platform.start()
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await platform.stop()
