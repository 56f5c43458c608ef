"""The elders domain: the registry of elders and their contacts, roster imports in the background, and its page."""

from __future__ import annotations

from pathlib import Path

from callcenter.contract import Contribution, Lifecycle, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.elders import http
from callcenter.elders.imports import RosterImportTasks
from callcenter.elders.models import Contact, Elder, LivingSituation, RosterImport


async def elders_page(request: PageRequest) -> PageContent:
    """The elders registry (``static/elders.js`` over ``/api/v1/elders``): find, register, change and delete files,
    and import the civil-affairs roster with its progress. Every centre role reads; what else a role may do is
    what the API lets it do (auditors see the files read-only)."""
    may_write = request.may(http.routes.roles_for("POST", "/elders"))
    may_manage = request.may(http.routes.roles_for("DELETE", "/elders/{id}"))  # and import the roster
    return PageContent(values={"may_write": may_write, "may_manage": may_manage,
                               "living": [situation.value for situation in LivingSituation]},
                       config={"mayWrite": may_write, "mayManage": may_manage})


ELDERS_PAGE = Page("/elders", "elders", Path(__file__).parent, content=elders_page, css=True,
                   nav=NavLink("common.nav.elders", "nav-elders"))


def load(ctx: PluginContext) -> Contribution:
    # Imports still running at shutdown are cancelled: nothing committed, the import marked failed.
    imports = ctx.provide(http.IMPORTS, RosterImportTasks(ctx.db))
    return Contribution(routes=http.routes, jobs=[Lifecycle(stop_with=imports.stop)], pages=[ELDERS_PAGE])


plugin = Plugin("elders", load, models=(Elder, Contact, RosterImport))
