"""The supervision-case domain (督办, seed 6.6): a scan every CC_ESCALATION_SCAN_SECONDS escalates orders near or
past their deadline, repeated complaints and dissatisfied results; urgings and resolutions at /supervision-cases."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.supervision_cases import http
from callcenter.supervision_cases.models import SupervisionCase, SupervisionUrging
from callcenter.supervision_cases.scanner import EscalationScanner


def load(ctx: PluginContext) -> Contribution:
    scanner = EscalationScanner(ctx.db, interval_seconds=ctx.settings.escalation_scan_seconds)
    return Contribution(routes=http.routes, jobs=[scanner])


plugin = Plugin("supervision_cases", load, models=(SupervisionCase, SupervisionUrging))
