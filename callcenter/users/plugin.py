"""The users domain: accounts for their whole life, log-in (with its throttling and second factor), log-in
sessions, the API's own user routes and the accounts page."""

from __future__ import annotations

from pathlib import Path

from callcenter.contract import (
    CENTRE_STAFF,
    Contribution,
    NavLink,
    Page,
    PageContent,
    PageRequest,
    Plugin,
    PluginContext,
)
from callcenter.users import http, second_factor
from callcenter.users.login_guard import LOGIN_GUARD, LoginGuard
from callcenter.users.models import Role, User, UserSession
from callcenter.users.sessions import SESSION_EVENTS, SessionEvents

# Who manages the staff's accounts: the policy of the operation that changes one (admins only).
ACCOUNT_MANAGERS = http.routes.roles_for("PATCH", "/users/{username}")


async def accounts_page(request: PageRequest) -> PageContent:
    """Every account's own password, second factor (admins and auditors) and sessions; for administrators, the
    staff accounts too. Portal accounts are created by their provider's registry entry, not here."""
    manage = request.may(ACCOUNT_MANAGERS)
    return PageContent(values={"manage": manage, "second_factor": request.role in second_factor.ROLES,
                               "staff_roles": [role.value for role in Role if role in CENTRE_STAFF]},
                       config={"manage": manage})


ACCOUNTS_PAGE = Page("/accounts", "accounts", Path(__file__).parent, content=accounts_page,
                     nav=NavLink("common.nav.accounts", "nav-accounts"))


def load(ctx: PluginContext) -> Contribution:
    ctx.provide(LOGIN_GUARD, LoginGuard(attempts_per_minute=ctx.settings.login_attempts_per_minute,
                                        hash_concurrency=ctx.settings.login_hash_concurrency))
    ctx.provide(SESSION_EVENTS, SessionEvents())
    return Contribution(routes=http.routes, pages=[ACCOUNTS_PAGE])


plugin = Plugin("users", load, models=(User, UserSession))
