"""The audit domain: who read or changed what (seed 5.9), its query routes, and the hash chain that makes the log
tamper-evident (its sealer job; ``callcenter audit verify``)."""

from __future__ import annotations

from callcenter.audit import http
from callcenter.audit.chain import AuditSealer
from callcenter.audit.models import AuditEntry
from callcenter.contract import Contribution, Plugin, PluginContext


def load(ctx: PluginContext) -> Contribution:
    return Contribution(routes=http.routes, jobs=[AuditSealer(ctx.db, ctx.settings.audit_seal_seconds)])


plugin = Plugin("audit", load, models=(AuditEntry,))
