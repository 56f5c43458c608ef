"""Contact cascades: responders called in order until one accepts, and the help-is-coming call to the elder."""

from __future__ import annotations

from callcenter.calls.plugin import SOS_CALLBACKS
from callcenter.care_calls.http import CARE_CALLS
from callcenter.cascades import http
from callcenter.cascades.models import Cascade, CascadeCall, Responder
from callcenter.cascades.services import CascadeService
from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.ivr.flows import load_flows
from callcenter.notifications.services import SMS
from callcenter.outbound.http import OUTBOUND_DIALER


def load(ctx: PluginContext) -> Contribution:
    prompts = frozenset(load_flows(ctx.settings.ivr_flows_dir).prompts)
    service = ctx.provide(http.CASCADES, CascadeService(ctx.db, ctx.require(OUTBOUND_DIALER), ctx.settings,
                                                        known_prompts=prompts,
                                                        sms=ctx.require(SMS)))
    # Nobody answered today's check-in: the elder's responders are called (the care calls' escalation).
    ctx.require(CARE_CALLS).on_missed(service.missed_checkin)
    # An SOS nobody answered: its responders are called beside the centre's call-back (CC_CASCADE_ON_ABANDONED_SOS).
    ctx.require(SOS_CALLBACKS).on_abandoned(service.abandoned_sos)
    return Contribution(routes=http.routes, jobs=[service])


plugin = Plugin("cascades", load, models=(Responder, Cascade, CascadeCall))
