"""The care-calls domain (关爱电话, seed 5.8): schedules per elder, the planner that queues today's calls on the
outbound engine, the care records of their outcomes, a missed check-in's escalation (an emergency order and the
``on_missed`` callbacks the contact cascade registers), the API and the /care-calls page."""

from __future__ import annotations

from pathlib import Path

from callcenter.care_calls import http
from callcenter.care_calls.models import CareRecord, CareSchedule
from callcenter.care_calls.services import GREETING_PROMPTS, CareCalls
from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.ivr.flows import load_flows
from callcenter.outbound.http import OUTBOUND_DIALER


async def care_calls_page(request: PageRequest) -> PageContent:
    """Today's care calls (``static/care_calls.js`` over ``/api/v1/care-calls``): the schedule, outcomes and the
    exceptions first, with the one-click call and "dealt with" for those who may write; supervisors also get
    "enable for all living alone"."""
    may_write = request.may(http.routes.roles_for("POST", "/care-records/{id}/handle"))
    may_enable = request.may(http.routes.roles_for("POST", "/care-schedules/enable-living-alone"))
    return PageContent(values={"may_write": may_write, "may_enable": may_enable, "today": request.today.isoformat()},
                       config={"mayWrite": may_write, "mayEnable": may_enable, "today": request.today.isoformat()})


CARE_CALLS_PAGE = Page("/care-calls", "care_calls", Path(__file__).parent, content=care_calls_page,
                       roles=http.routes.roles_for("POST", "/care-records/{id}/handle"),
                       nav=NavLink("common.nav.care_calls", "nav-care-calls", everywhere=False))


def load(ctx: PluginContext) -> Contribution:
    prompts = frozenset(load_flows(ctx.settings.ivr_flows_dir).prompts)
    missing = sorted(set(GREETING_PROMPTS.values()) - prompts)
    if missing:  # a greeting that could never be said stops the platform here, not on its festival
        raise RuntimeError(f"care-call prompts missing from the IVR prompts: {', '.join(missing)}")
    service = ctx.provide(http.CARE_CALLS, CareCalls(ctx.db, ctx.settings, ctx.require(OUTBOUND_DIALER),
                                                     known_prompts=prompts))
    return Contribution(routes=http.routes, jobs=[service], pages=[CARE_CALLS_PAGE])


plugin = Plugin("care_calls", load, models=(CareSchedule, CareRecord))
