"""The outbound engine's domain: the dialer (jobs, attempts, caps, windows), its AGI script step and its API."""

from __future__ import annotations

import functools

from callcenter.calls.plugin import CALL_RECORDER
from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.ivr.prompts import sounds_dir
from callcenter.outbound import agi, http
from callcenter.outbound.models import OutboundAttempt, OutboundJob
from callcenter.outbound.services import OutboundDialer


def load(ctx: PluginContext) -> Contribution:
    dialer = ctx.provide(http.OUTBOUND_DIALER, OutboundDialer(ctx.db, ctx.ami, ctx.settings))
    recorder = ctx.require(CALL_RECORDER)
    recorder.on_call_ended(dialer.call_ended)
    recorder.on_caught_up(dialer.caught_up)
    return Contribution(routes=http.routes, agi={"outbound": functools.partial(agi.run_script, dialer,
                                                                              sounds_dir(ctx.runtime))},
                        jobs=[dialer])


plugin = Plugin("outbound", load, models=(OutboundJob, OutboundAttempt))
