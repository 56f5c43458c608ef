"""The agents domain: queue membership and state from AMI, log-in/pause, sessions restored after a restart."""

from __future__ import annotations

from callcenter.agents import http
from callcenter.agents.models import AgentSession
from callcenter.agents.services import AGENTS, AgentService
from callcenter.agents.services import EVENTS as AGENT_EVENTS
from callcenter.agents.state import AGENT_REGISTRY, MEMBER_EVENTS, AgentRegistry
from callcenter.contract import Contribution, Lifecycle, Plugin, PluginContext, on_ami


def load(ctx: PluginContext) -> Contribution:
    registry = ctx.provide(AGENT_REGISTRY, AgentRegistry())
    agents = ctx.provide(AGENTS, AgentService(ctx.db, ctx.ami, registry, wrapup_seconds=ctx.settings.wrapup_seconds))
    return Contribution(routes=http.routes,
                        ami=[on_ami(MEMBER_EVENTS, registry.handle), on_ami(AGENT_EVENTS, agents.handle)],
                        jobs=[Lifecycle(stop_with=agents.stop)])


plugin = Plugin("agents", load, models=(AgentSession,))
