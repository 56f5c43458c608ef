"""The elders domain: the registry of elders and their contacts, and roster imports in the background."""

from __future__ import annotations

from callcenter.contract import Contribution, Lifecycle, Plugin, PluginContext
from callcenter.elders import http
from callcenter.elders.imports import RosterImportTasks
from callcenter.elders.models import Contact, Elder, RosterImport


def load(ctx: PluginContext) -> Contribution:
    # Imports still running at shutdown are cancelled: nothing committed, the import marked failed.
    imports = ctx.provide(http.IMPORTS, RosterImportTasks(ctx.db))
    return Contribution(routes=http.routes, jobs=[Lifecycle(stop_with=imports.stop)])


plugin = Plugin("elders", load, models=(Elder, Contact, RosterImport))
