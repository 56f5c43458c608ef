"""The calls domain: the call log from AMI events, SOS intake over FastAGI, the journal that keeps SOS handling
going while the database is away, the CDR reconciliation after every AMI login, and abandoned-SOS callbacks."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from callcenter.agents.state import AGENT_REGISTRY
from callcenter.calls import agi, http
from callcenter.calls.callbacks import SosCallbacks
from callcenter.calls.events import EVENTS as CALL_EVENTS
from callcenter.calls.events import CallEventRecorder
from callcenter.calls.journal import journal_directory
from callcenter.calls.models import Call, CallLeg
from callcenter.calls.reconcile import CdrReconciler, cdr_file
from callcenter.calls.replay import journal_applier
from callcenter.contract import Contribution, Lifecycle, Plugin, PluginContext, on_ami
from callcenter.db.base import utcnow
from callcenter.journal import Journal, JournalProbe
from callcenter.telephony.ami import AmiClient

# Every other domain that cares when a call ends (recordings, the wallboard) subscribes here.
CALL_RECORDER = web.AppKey("call_recorder", CallEventRecorder)
# The abandoned-SOS call-backs: the contact cascade starts with one (cascades).
SOS_CALLBACKS = web.AppKey("sos_callbacks", SosCallbacks)


def load(ctx: PluginContext) -> Contribution:
    settings = ctx.settings
    # What the database cannot take while it is down or stalled waits here, on local disk, and is replayed.
    journal = Journal(journal_directory(settings.data_dir))
    recorder = ctx.provide(CALL_RECORDER, CallEventRecorder(ctx.db, journal))
    callbacks = ctx.provide(SOS_CALLBACKS, SosCallbacks(ctx.db, ctx.ami, ctx.require(AGENT_REGISTRY)))
    recorder.on_call_ended(callbacks.call_ended)
    recorder.on_caught_up(callbacks.caught_up)
    # Calls Asterisk served while we were away are read back from its CDR after every AMI (re)login.
    reconciler = CdrReconciler(ctx.db, settings, ctx.runtime.host_path(cdr_file(ctx.runtime)))
    reconciler.on_call_added(callbacks.call_ended)
    return Contribution(
        routes=http.routes,
        ami=[on_ami(CALL_EVENTS, recorder.handle)],
        agi={"identify-caller": functools.partial(agi.identify_caller, ctx.db),
             "sos": functools.partial(agi.sos_intake, ctx.db, settings.sos_intake_seconds, journal)},
        jobs=[Lifecycle(functools.partial(journal.start, journal_applier(ctx.db, recorder)), journal.stop),
              callbacks],
        on_ami_login=[_reconcile_after_login(ctx.ami, reconciler, recorder)],
        probes=[JournalProbe(journal)],
    )


def _reconcile_after_login(ami: AmiClient, reconciler: CdrReconciler,
                           recorder: CallEventRecorder) -> Callable[[], Awaitable[None]]:
    async def reconcile() -> None:
        """The calls Asterisk holds now, then those that ended while the platform was away (calls.reconcile)."""
        listed_at = utcnow()
        response = await ami.send_action({"Action": "CoreShowChannels"}, timeout=15)
        channels = response if isinstance(response, list) else [response]
        await reconciler.reconcile(live_channels=[c for c in channels if c.get("Event") == "CoreShowChannel"],
                                   listed_at=listed_at)
        # Only now can a dial whose Originate was in flight when the link dropped be told rang or not (the SOS
        # call-backs, the outbound engine).
        await recorder.caught_up()

    return reconcile


plugin = Plugin("calls", load, models=(Call, CallLeg))
