"""The audit domain: who read or changed what (seed 5.9), and its query routes."""

from __future__ import annotations

from callcenter.audit import http
from callcenter.audit.models import AuditEntry
from callcenter.contract import Contribution, Plugin, PluginContext


def load(_ctx: PluginContext) -> Contribution:
    return Contribution(routes=http.routes)


plugin = Plugin("audit", load, models=(AuditEntry,))
