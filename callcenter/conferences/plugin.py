"""The conference domain: the one-click emergency conference (120, doctor, relatives, social worker), its roster
from Confbridge* events."""

from __future__ import annotations

from callcenter.conferences import http
from callcenter.conferences.models import ConferenceParticipant
from callcenter.conferences.services import EVENTS, ConferenceService
from callcenter.contract import Contribution, Lifecycle, Plugin, PluginContext, on_ami


def load(ctx: PluginContext) -> Contribution:
    conferences = ctx.provide(http.CONFERENCES, ConferenceService(ctx.db, ctx.ami, ctx.settings))
    return Contribution(routes=http.routes, ami=[on_ami(EVENTS, conferences.handle)],
                        jobs=[Lifecycle(stop_with=conferences.stop)])


plugin = Plugin("conferences", load, models=(ConferenceParticipant,))
