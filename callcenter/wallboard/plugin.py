"""The wallboard domain: waiting callers and talks from AMI (QueueStatus after every login), the rest from the call
log; pushed when it changes, coalesced; the disk alarms shown."""

from __future__ import annotations

from callcenter.agents.state import AGENT_REGISTRY
from callcenter.calls.plugin import CALL_RECORDER
from callcenter.contract import Contribution, Plugin, PluginContext, on_ami
from callcenter.health.plugin import DISK_MONITOR
from callcenter.wallboard import http
from callcenter.wallboard.services import EVENTS, WallboardService


def load(ctx: PluginContext) -> Contribution:
    wallboard = ctx.provide(http.WALLBOARD, WallboardService(ctx.db, ctx.ami, ctx.require(AGENT_REGISTRY),
                                                              timezone=ctx.settings.timezone))
    ctx.require(CALL_RECORDER).on_call_ended(wallboard.call_ended)
    wallboard.show_alarms(ctx.require(DISK_MONITOR))
    return Contribution(routes=http.routes, ami=[on_ami(EVENTS, wallboard.handle)], jobs=[wallboard])


plugin = Plugin("wallboard", load)
