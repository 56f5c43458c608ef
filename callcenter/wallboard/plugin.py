"""The wallboard domain: waiting callers and talks from AMI (QueueStatus after every login), the rest from the call
log; pushed when it changes, coalesced; the disk alarms shown; the supervisors' page."""

from __future__ import annotations

from pathlib import Path

from callcenter.agents.state import AGENT_REGISTRY
from callcenter.calls.plugin import CALL_RECORDER
from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext, on_ami
from callcenter.health.plugin import DISK_MONITOR
from callcenter.wallboard import http
from callcenter.wallboard.services import EVENTS, QUEUES, WallboardService


async def wallboard_page(_request: PageRequest) -> PageContent:
    """The supervisors' wallboard (``static/wallboard.js``: ``GET /api/v1/wallboard``, then ``wallboard`` pushes on
    ``/ws``). Anyone else signed in gets a 403 page, anonymous visitors the log-in."""
    return PageContent(values={"queues": QUEUES})


WALLBOARD_PAGE = Page("/wallboard", "wallboard", Path(__file__).parent, content=wallboard_page, css=True,
                      roles=http.routes.roles_for("GET", "/wallboard"),
                      nav=NavLink("common.nav.wallboard", "nav-wallboard", everywhere=False))


def load(ctx: PluginContext) -> Contribution:
    wallboard = ctx.provide(http.WALLBOARD, WallboardService(ctx.db, ctx.ami, ctx.require(AGENT_REGISTRY),
                                                              timezone=ctx.settings.timezone))
    ctx.require(CALL_RECORDER).on_call_ended(wallboard.call_ended)
    wallboard.show_alarms(ctx.require(DISK_MONITOR))
    return Contribution(routes=http.routes, ami=[on_ami(EVENTS, wallboard.handle)], jobs=[wallboard],
                        pages=[WALLBOARD_PAGE])


plugin = Plugin("wallboard", load)
