"""The running platform: web + REST + WebSocket, the AMI client and the FastAGI server in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.agents.services import EVENTS as AGENT_EVENTS
from callcenter.agents.services import AgentService
from callcenter.agents.state import MEMBER_EVENTS, AgentRegistry
from callcenter.api.context import ApiServices
from callcenter.api.tokens import TokenService
from callcenter.asterisk.provisioning import AsteriskProvisioner
from callcenter.asterisk.render import ami_credentials, recordings_spool
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.calls.callbacks import SosCallbacks
from callcenter.calls.events import EVENTS as CALL_EVENTS
from callcenter.calls.events import CallEventRecorder
from callcenter.calls.journal import Journal
from callcenter.calls.reconcile import CdrReconciler, cdr_file
from callcenter.calls.replay import journal_applier
from callcenter.conferences.services import EVENTS as CONFERENCE_EVENTS
from callcenter.conferences.services import ConferenceService
from callcenter.config import ConfigError, Settings
from callcenter.db.base import utcnow
from callcenter.db.migrate import current_revision, head_revision
from callcenter.db.session import Database
from callcenter.desk.hub import PanelHub, publish_agent_state
from callcenter.desk.screenpop import EVENTS as SCREEN_POP_EVENTS
from callcenter.desk.screenpop import ScreenPops, publish_roster
from callcenter.follow_up_calls.services import EVENTS as FOLLOW_UP_EVENTS
from callcenter.follow_up_calls.services import FollowUpDialer
from callcenter.health.disk import DiskMonitor
from callcenter.health.services import HealthService, JournalProbe
from callcenter.ivr.flows import load_flows
from callcenter.ivr.prompts import sounds_dir
from callcenter.logs import get_logger
from callcenter.orders.notify import OrderNotifier
from callcenter.recordings.backends import build_stores
from callcenter.recordings.pipeline import RecordingPipeline
from callcenter.retention.engine import RetentionEngine, RetentionPolicy
from callcenter.retention.service import RetentionService
from callcenter.spy.services import EVENTS as SPY_EVENTS
from callcenter.spy.services import SpyService
from callcenter.supervision_cases.scanner import EscalationScanner
from callcenter.telephony.agi_routes import build_routes
from callcenter.telephony.ami import AmiClient
from callcenter.telephony.fastagi import FastAgiServer
from callcenter.users.login_guard import LoginGuard
from callcenter.users.services import ensure_admin
from callcenter.wallboard.services import EVENTS as WALLBOARD_EVENTS
from callcenter.wallboard.services import WallboardService
from callcenter.web.app import create_app

log = get_logger(__name__)


class SchemaOutOfDate(RuntimeError):
    pass


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        credentials = ami_credentials(settings)
        self.ami = AmiClient(settings.ami.host, settings.ami.port, credentials.username, credentials.secret)
        # What the database cannot take while it is down or stalled waits here, on local disk, and is replayed.
        self.journal = Journal(settings.data_dir / "journal")
        self.call_events = CallEventRecorder(self.db, self.journal)
        self.ami.subscribe(CALL_EVENTS, self.call_events.handle)
        # Telephony services: agents' queue membership and state, abandoned-SOS callbacks.
        self.agent_registry = AgentRegistry()
        self.ami.subscribe(MEMBER_EVENTS, self.agent_registry.handle)
        self.agents = AgentService(self.db, self.ami, self.agent_registry, wrapup_seconds=settings.wrapup_seconds)
        self.ami.subscribe(AGENT_EVENTS, self.agents.handle)
        self.sos_callbacks = SosCallbacks(self.db, self.ami, self.agent_registry)
        self.call_events.on_call_ended(self.sos_callbacks.call_ended)
        runtime = AsteriskRuntime.for_settings(settings)
        # Calls Asterisk served while we were away are read back from its CDR after every AMI (re)login.
        self.reconciler = CdrReconciler(self.db, settings, runtime.host_path(cdr_file(runtime)))
        self.reconciler.on_call_added(self.sos_callbacks.call_ended)
        self.ami.on_login(self._reconcile)
        # Recordings: MixMonitor's spool → compressed, stored and registered when a call ends and on every scan.
        # New recordings go to CC_RECORDING_STORAGE's store; each row is read from the store of its own backend.
        self.recording_stores = build_stores(settings)
        self.recording_store = self.recording_stores.primary
        self.recordings = RecordingPipeline(
            self.db, self.recording_store, runtime.host_path(recordings_spool(runtime)),
            settings.data_dir / "recordings-work", retention_days=settings.recording_retention_days,
            scan_seconds=settings.recording_scan_seconds)
        self.call_events.on_call_ended(self.recordings.call_ended)
        # Retention (seed 5.10): a run shortly after start, then daily; audio is deleted from each row's own store.
        self.retention = RetentionService(RetentionEngine(self.db, self.recording_stores,
                                                          RetentionPolicy.from_settings(settings)))
        # Supervision cases (督办, seed 6.6): orders near or past their deadline, repeated complaints and
        # dissatisfied results are escalated by a scan every CC_ESCALATION_SCAN_SECONDS.
        self.escalations = EscalationScanner(self.db, interval_seconds=settings.escalation_scan_seconds)
        # A broken IVR flow stops the platform here, naming the file, node and problem.
        self.flows = load_flows(settings.ivr_flows_dir)
        # A Mandarin menu with three tries runs past a minute; the limit only stops a handler that is stuck.
        self.fastagi = FastAgiServer(settings.agi.host, settings.agi.port,
                                     build_routes(self.db, self.flows, sounds_dir(runtime),
                                                  timezone=ZoneInfo(settings.timezone),
                                                  sos_intake_seconds=settings.sos_intake_seconds,
                                                  journal=self.journal),
                                     handler_timeout=300)
        # Free space of the spool, the recordings store and the data dir: alarmed before a disk is full.
        self.disk = DiskMonitor.for_platform(settings, self.recordings.spool)
        self.disk.on_change(self.recordings.scan_soon)  # space may be back: collect what waited without delay
        self.health = HealthService(self.db, self.ami, self.fastagi, ami_label=str(settings.ami),
                                    agi_label=str(settings.agi), probes=[self.disk, JournalProbe(self.journal)])
        # REST API: bearer tokens, and the provisioner that applies new devices and phones to Asterisk.
        self.provisioner = AsteriskProvisioner(settings, self.db, self.ami)
        # The one-click emergency conference (roster from Confbridge* events).
        self.conferences = ConferenceService(self.db, self.ami, settings)
        self.ami.subscribe(CONFERENCE_EVENTS, self.conferences.handle)
        # Supervisors' listen / whisper / barge (ChanSpy on the agent's channel, the supervisor's phone rung).
        self.spy = SpyService(self.db, self.ami, settings)
        self.ami.subscribe(SPY_EVENTS, self.spy.handle)
        # The supervisors' wallboard: waiting callers and talks from AMI (QueueStatus after every login), the
        # rest from the call log; pushed over /ws when it changes, coalesced.
        self.wallboard = WallboardService(self.db, self.ami, self.agent_registry, timezone=settings.timezone)
        self.ami.subscribe(WALLBOARD_EVENTS, self.wallboard.handle)
        self.call_events.on_call_ended(self.wallboard.call_ended)
        # One-click follow-up calls (回访): the agent's phone rung, then the elder dialled; outcomes on the trail.
        self.follow_ups = FollowUpDialer(self.db, self.ami, settings)
        self.ami.subscribe(FOLLOW_UP_EVENTS, self.follow_ups.handle)
        # Provider portals hear of a dispatch (and of the centre's steps that affect them) over /provider/ws.
        self.order_notifier = OrderNotifier()
        api = ApiServices(db=self.db, tokens=TokenService.for_settings(settings), provisioner=self.provisioner,
                          agents=self.agents, recordings=self.recording_stores, conferences=self.conferences,
                          spy=self.spy, wallboard=self.wallboard, notifier=self.order_notifier,
                          timezone=settings.timezone,
                          provider_api_max_skew=settings.provider_api_max_skew, follow_ups=self.follow_ups,
                          login_guard=LoginGuard(attempts_per_minute=settings.login_attempts_per_minute,
                                                 hash_concurrency=settings.login_hash_concurrency))
        # The agent desk's WebSocket: screen-pops on AgentConnect, agent-state pushes, one bounded queue a browser.
        self.panel_hub = PanelHub()
        self.screen_pops = ScreenPops(self.db, self.panel_hub)
        self.ami.subscribe(SCREEN_POP_EVENTS, self.screen_pops.handle)
        self.agent_registry.on_change(publish_agent_state(self.panel_hub))
        self.wallboard.publish_to(self.panel_hub)
        self.wallboard.show_alarms(self.disk)
        self.conferences.on_roster_change(publish_roster(self.panel_hub, self.screen_pops))
        self.web = create_app(self.health, api, desk=(self.panel_hub, self.screen_pops),
                              cookie_secure=settings.cookie_secure)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        current = await current_revision(self.settings.database_url)
        if current != head_revision():
            raise SchemaOutOfDate(
                f"database schema is at {current or 'nothing'}, code expects {head_revision()}: "
                "run `callcenter db upgrade` first"
            )
        if self.settings.admin_password:
            async with self.db.transaction() as session:
                if await ensure_admin(session, self.settings.admin_password):
                    log.info("users.admin_bootstrapped")
        # FastAGI first: Asterisk may already be sending calls our way.
        await self.fastagi.start()
        await self.ami.start()
        await self.journal.start(journal_applier(self.db, self.call_events))
        await self.sos_callbacks.start()
        await self.wallboard.start()
        await self.recording_stores.start()
        await self.disk.start()
        await self.recordings.start()
        await self.retention.start()
        await self.escalations.start()
        self._runner = web.AppRunner(self.web, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.settings.http.host, self.settings.http.port).start()
        # Everything loaded so far lives as long as the process: out of the collector's way, so full collections
        # (which stopped the event loop for 65-128 ms under load, delaying screen-pops) stay short.
        gc.freeze()
        log.info("platform.started", http=str(self.settings.http), agi=str(self.settings.agi),
                 ami=str(self.settings.ami), database=self.db.backend)

    async def _reconcile(self) -> None:
        """After every AMI login: the calls Asterisk holds now, then those that ended while the platform was away
        (calls.reconcile)."""
        listed_at = utcnow()
        response = await self.ami.send_action({"Action": "CoreShowChannels"}, timeout=15)
        channels = response if isinstance(response, list) else [response]
        await self.reconciler.reconcile(live_channels=[c for c in channels if c.get("Event") == "CoreShowChannel"],
                                        listed_at=listed_at)
        # Only now can a callback whose Originate was in flight when the link dropped be told rang or not.
        await self.sos_callbacks.caught_up()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.sos_callbacks.stop()
        await self.journal.stop()
        await self.wallboard.stop()
        await self.agents.stop()
        await self.conferences.stop()
        await self.spy.close()
        await self.follow_ups.close()
        await self.retention.stop()
        await self.escalations.stop()
        await self.disk.stop()
        await self.recordings.stop()
        await self.recording_stores.stop()
        await self.ami.stop()
        await self.fastagi.stop()
        await self.db.dispose()
        log.info("platform.stopped")


async def serve(settings: Settings) -> None:
    try:
        platform = Platform(settings)
    except ConfigError as error:  # a CC_* variable read beside Settings (system.disk): refused as plainly
        raise SystemExit(f"callcenter: configuration error: {error}") from None
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
