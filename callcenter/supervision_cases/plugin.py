"""The supervision-case domain (督办, seed 6.6): a scan every CC_ESCALATION_SCAN_SECONDS escalates orders near or
past their deadline, repeated complaints and dissatisfied results; urgings and resolutions at /supervision-cases,
and the page that lists them."""

from __future__ import annotations

from pathlib import Path

from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.supervision_cases import http
from callcenter.supervision_cases.models import (
    CaseReason,
    CaseStatus,
    SupervisionCase,
    SupervisionUrging,
    UrgingMethod,
)
from callcenter.supervision_cases.scanner import EscalationScanner


async def supervision_cases_page(request: PageRequest) -> PageContent:
    """Supervision cases (督办, ``static/supervision_cases.js`` over ``/api/v1/supervision-cases``): the unresolved
    cases with reason, order, provider and age; those the API lets resolve also record urgings, others only read."""
    read_only = not request.may(http.routes.roles_for("POST", "/supervision-cases/{id}/resolve"))
    return PageContent(values={"read_only": read_only, "reasons": [reason.value for reason in CaseReason],
                               "statuses": [status.value for status in CaseStatus],
                               "methods": [method.value for method in UrgingMethod]},
                       config={"readOnly": read_only})


SUPERVISION_CASES_PAGE = Page("/supervision-cases", "supervision_cases", Path(__file__).parent,
                              content=supervision_cases_page,
                              nav=NavLink("common.nav.supervision_cases", "nav-supervision-cases", everywhere=False))


def load(ctx: PluginContext) -> Contribution:
    scanner = EscalationScanner(ctx.db, interval_seconds=ctx.settings.escalation_scan_seconds)
    return Contribution(routes=http.routes, jobs=[scanner], pages=[SUPERVISION_CASES_PAGE])


plugin = Plugin("supervision_cases", load, models=(SupervisionCase, SupervisionUrging))
