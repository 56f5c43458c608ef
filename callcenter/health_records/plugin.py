"""The health-records domain (issue 15; seed 5.4, 5.5, 5.11.2): its REST routes under /api/v1/elders/{id}/…, the
overdue-visit scan that raises work orders for the community doctor, and the health record's section of the
elder's file on the elders page."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from callcenter.contract import Contribution, PageContent, PageRequest, PageSection, Plugin, PluginContext
from callcenter.health_records import http
from callcenter.health_records.assessment import RiskEvent
from callcenter.health_records.models import (
    AssessmentReason,
    CapabilityAssessment,
    ChronicPlan,
    Condition,
    DoctorNote,
    Examination,
    OverdueVisitOrder,
    Visit,
    VisitKind,
)
from callcenter.health_records.overdue import OverdueVisitScanner

# Each tab's form, by the operation that saves it: shown only to the roles its POST (PATCH for a plan's change)
# allows, so the page and the API cannot disagree.
_FORMS = {"plans": ("POST", "/elders/{id}/chronic-plans"),
          "plan_changes": ("PATCH", "/elders/{id}/chronic-plans/{plan_id}"),
          "assessments": ("POST", "/elders/{id}/assessments"), "examinations": ("POST", "/elders/{id}/examinations"),
          "visits": ("POST", "/elders/{id}/health-visits"), "notes": ("POST", "/elders/{id}/doctor-notes")}


async def health_record_section(request: PageRequest) -> PageContent:
    """The elder's health record on the elders page (``static/health_records.js`` over the routes above): what the
    API shows this role (content masked for admins and auditors, every read audited by the API), each form only
    where the API would take it. ``today`` is the centre's, for "overdue"."""
    may = {form: request.may(http.routes.roles_for(method, path)) for form, (method, path) in _FORMS.items()}
    return PageContent(values={"may": may, "conditions": [condition.value for condition in Condition],
                               "reasons": [reason.value for reason in AssessmentReason],
                               "risk_events": [event.value for event in RiskEvent],
                               "visit_kinds": [kind.value for kind in VisitKind]},
                       config={"may": may, "today": request.today.isoformat()})


HEALTH_RECORD_SECTION = PageSection("elders", "health_records", Path(__file__).parent, content=health_record_section,
                                    roles=http.routes.roles_for("GET", "/elders/{id}/health-visits"), css=True)


def load(ctx: PluginContext) -> Contribution:
    scanner = OverdueVisitScanner(ctx.db, tz=ZoneInfo(ctx.settings.timezone),
                                  interval_seconds=ctx.settings.health_visit_scan_seconds)
    return Contribution(routes=http.routes, jobs=[scanner], sections=[HEALTH_RECORD_SECTION])


plugin = Plugin("health_records", load, models=(Examination, Visit, DoctorNote, CapabilityAssessment, ChronicPlan,
                                                OverdueVisitOrder))
