"""The agent desk: the agent page (/, every centre account's home) and the panel's WebSocket (/ws) with screen-pops
on AgentConnect, agent-state pushes, the wallboard's pushes and the conference roster; one bounded queue a
browser."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from callcenter.agents import http as agents_http
from callcenter.agents.state import AGENT_REGISTRY
from callcenter.alarms.distribution import ALARM_DISTRIBUTOR, OVERFLOW_WATCHERS
from callcenter.alarms.models import AlarmOutcome
from callcenter.api.context import TOKENS
from callcenter.api.middleware import ended_sessions_closer
from callcenter.cascades.http import CASCADES
from callcenter.conferences.http import CONFERENCES
from callcenter.contract import Contribution, Page, PageContent, PageRequest, Plugin, PluginContext, on_ami
from callcenter.desk import http
from callcenter.desk.agent_state import AGENT_STATE_WATCHERS, publish_agent_state
from callcenter.desk.alarm_card import build_alarm_card
from callcenter.desk.pop_audit import ScreenPopAudit
from callcenter.desk.screenpop import EVENTS, ScreenPops, publish_roster
from callcenter.locations.map import MAP_LIBRARIES, MAP_TILES
from callcenter.orders.models import WorkOrderKind
from callcenter.providers.models import ServiceType
from callcenter.telephony.mqtt import MqttState
from callcenter.users.models import Role
from callcenter.users.sessions import SESSION_EVENTS
from callcenter.wallboard.http import WALLBOARD

PAUSE_REASONS = ("break", "meal", "training", "meeting", "other")
# The agent bar and screen-pops: for those with a phone in the queues, who log it in there. Taken as the route's
# roles as they are, without Principal.may's admins: an admin has no phone in a queue.
QUEUE_STAFF = agents_http.routes.roles_for("POST", "/agents/{username}/login")
# The table of every agent: for those who oversee the floor (and admins). The API lets agents read it too, but the
# desk shows an agent only their own bar.
ALL_AGENTS_TABLE = (Role.SUPERVISOR, Role.AUDITOR)


async def agent_page(request: PageRequest) -> PageContent:
    """Which parts the agent page has, by role: agents and supervisors get the agent bar, screen-pops and alarm
    cards; supervisors and admins the alarms past their answer target; supervisors, admins and auditors the table
    of all agents; auditors nothing that acts."""
    agent_bar = request.role in QUEUE_STAFF
    all_agents = request.may(ALL_AGENTS_TABLE)
    read_only = request.role is Role.AUDITOR
    overflow = request.may(OVERFLOW_WATCHERS)  # supervisors and admins: the hub pushes them the overflows
    # Those who take alarms or watch them overflow are told when devices' alarms cannot reach the centre: MQTT off
    # (no broker installed or configured) or not connected as the page loads. Voice calls are not affected.
    channel = request.services[http.DEVICE_CHANNEL]
    device_alarms = None
    if agent_bar or overflow:
        if channel.state is MqttState.OFF:
            device_alarms = {"state": "off", "detail": channel.describe()}
        elif channel.state is MqttState.DISCONNECTED:
            device_alarms = {"state": "disconnected", "detail": channel.describe()}
    return PageContent(
        values={"agent_bar": agent_bar, "all_agents": all_agents, "read_only": read_only, "pops": agent_bar,
                "pause_reasons": PAUSE_REASONS, "alarm_outcomes": [outcome.value for outcome in AlarmOutcome],
                "overflow": overflow, "device_alarms": device_alarms},
        config={"agentBar": agent_bar, "allAgents": all_agents, "liveAgents": request.may(AGENT_STATE_WATCHERS),
                "alarmOverflow": overflow,
                "readOnly": read_only, "pops": agent_bar, "orderKinds": [kind.value for kind in WorkOrderKind],
                "serviceTypes": [service.value for service in ServiceType],
                "map": request.service(MAP_TILES).config()})  # the alarm card's map


# Every centre role may use it, so it never answers 403.
AGENT_PAGE = Page("/", "panel", Path(__file__).parent, content=agent_page, home=True, libraries=MAP_LIBRARIES)


def load(ctx: PluginContext) -> Contribution:
    hub = ctx.provide(http.HUB, http.panel_hub())
    ctx.provide(http.DEVICE_CHANNEL, ctx.mqtt)
    pop_audit = ScreenPopAudit(ctx.db)
    pops = ctx.provide(http.POPS, ScreenPops(ctx.db, hub, pop_audit))
    ctx.require(AGENT_REGISTRY).on_change(publish_agent_state(hub))
    ctx.require(WALLBOARD).publish_to(hub)
    ctx.require(CONFERENCES).on_roster_change(publish_roster(hub, pops))
    ctx.require(CASCADES).publish_to(hub)  # a responder accepting shows on the alarm card at once
    ctx.require(SESSION_EVENTS).subscribe(ended_sessions_closer(hub))
    # Alarms are offered on the panels, with the elder's file as the screen-pop shows it.
    alarms = ctx.require(ALARM_DISTRIBUTOR)
    alarms.publish_to(hub, build_alarm_card)

    def websocket(app: web.Application) -> None:
        http.register(app, hub=hub, pops=pops, db=ctx.db, tokens=app[TOKENS], alarms=alarms)

    return Contribution(ami=[on_ami(EVENTS, pops.handle)], pages=[AGENT_PAGE], web=[websocket], jobs=[pop_audit])


plugin = Plugin("desk", load)
