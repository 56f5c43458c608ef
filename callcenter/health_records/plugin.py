"""The health-records domain (issue 15; seed 5.4, 5.5, 5.11.2): its REST routes under /api/v1/elders/{id}/… and
the overdue-visit scan that raises work orders for the community doctor."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.health_records import http
from callcenter.health_records.models import (
    CapabilityAssessment,
    ChronicPlan,
    DoctorNote,
    Examination,
    OverdueVisitOrder,
    Visit,
)
from callcenter.health_records.overdue import OverdueVisitScanner


def load(ctx: PluginContext) -> Contribution:
    scanner = OverdueVisitScanner(ctx.db, tz=ZoneInfo(ctx.settings.timezone),
                                  interval_seconds=ctx.settings.health_visit_scan_seconds)
    return Contribution(routes=http.routes, jobs=[scanner])


plugin = Plugin("health_records", load, models=(Examination, Visit, DoctorNote, CapabilityAssessment, ChronicPlan,
                                                OverdueVisitOrder))
