"""The agent desk: the panel's WebSocket (/ws) with screen-pops on AgentConnect, agent-state pushes, the wallboard's
pushes and the conference roster; one bounded queue a browser."""

from __future__ import annotations

from aiohttp import web

from callcenter.agents.state import AGENT_REGISTRY
from callcenter.api.context import TOKENS
from callcenter.conferences.http import CONFERENCES
from callcenter.contract import Contribution, Plugin, PluginContext, on_ami
from callcenter.desk import http
from callcenter.desk.agent_state import publish_agent_state
from callcenter.desk.screenpop import EVENTS, ScreenPops, publish_roster
from callcenter.wallboard.http import WALLBOARD


def load(ctx: PluginContext) -> Contribution:
    hub = ctx.provide(http.HUB, http.panel_hub())
    pops = ctx.provide(http.POPS, ScreenPops(ctx.db, hub))
    ctx.require(AGENT_REGISTRY).on_change(publish_agent_state(hub))
    ctx.require(WALLBOARD).publish_to(hub)
    ctx.require(CONFERENCES).on_roster_change(publish_roster(hub, pops))

    def websocket(app: web.Application) -> None:
        http.register(app, hub=hub, pops=pops, db=ctx.db, tokens=app[TOKENS])

    return Contribution(ami=[on_ami(EVENTS, pops.handle)], web=[websocket])


plugin = Plugin("desk", load)
