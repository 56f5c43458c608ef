"""The follow-up call domain (回访): the agent's phone rung, then the elder dialled; outcomes on the trail."""

from __future__ import annotations

from callcenter.contract import Contribution, Lifecycle, Plugin, PluginContext, on_ami
from callcenter.follow_up_calls import http
from callcenter.follow_up_calls.services import EVENTS, FollowUpDialer


def load(ctx: PluginContext) -> Contribution:
    dialer = ctx.provide(http.FOLLOW_UP_DIALER, FollowUpDialer(ctx.db, ctx.ami, ctx.settings))
    return Contribution(routes=[*http.routes, *http.alarm_routes], ami=[on_ami(EVENTS, dialer.handle)],
                        jobs=[Lifecycle(stop_with=dialer.close)])


plugin = Plugin("follow_up_calls", load)
