"""The providers domain (seed 6.3): the registry of service providers, their staff and API keys, signed reports;
the centre's registry page and the providers' own portal with its live notices."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from callcenter.api.middleware import ended_sessions_closer
from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.orders.notify import ORDER_NOTIFIER
from callcenter.providers import http
from callcenter.providers.models import (
    ProviderApiKey,
    ProviderApiNonce,
    ProviderReport,
    ProviderStaff,
    ServiceProvider,
    ServiceType,
)
from callcenter.providers.portal import PORTAL_PAGE, portal_socket
from callcenter.users.sessions import SESSION_EVENTS

# A licence running out within this many days is flagged on the registry page, so it is renewed before matching
# and dispatch start refusing the provider (providers.services.licence_valid).
LICENCE_WARNING_DAYS = 30


async def registry_page(request: PageRequest) -> PageContent:
    """The service-provider registry (seed 5.11, ``static/providers.js`` over ``/api/v1/providers``): list by
    service and active, register and edit providers with their fees per service and licence (an expired or soon
    expiring licence is flagged), staff, portal accounts, signing keys (the secret shown once) and the evaluation.
    (``/provider`` is the providers' own portal, hence its path.)"""
    services = [service.value for service in ServiceType]
    # "Expired" is judged on the centre's calendar, as the API does when matching.
    return PageContent(values={"services": services},
                       config={"today": request.today.isoformat(), "licenceWarningDays": LICENCE_WARNING_DAYS,
                               "services": services})


# For those who may change the registry; anyone else signed in gets a 403 page, anonymous visitors the log-in.
REGISTRY_PAGE = Page("/providers-registry", "providers", Path(__file__).parent, content=registry_page, css=True,
                     roles=http.routes.roles_for("POST", "/providers"),
                     nav=NavLink("common.nav.providers", "nav-providers"))


def load(ctx: PluginContext) -> Contribution:
    pages = ctx.require(ORDER_NOTIFIER).pages
    socket = portal_socket(pages)
    ctx.require(SESSION_EVENTS).subscribe(ended_sessions_closer(pages))

    def portal_websocket(app: web.Application) -> None:
        app.router.add_get("/provider/ws", socket)

    return Contribution(routes=http.routes, pages=[PORTAL_PAGE, REGISTRY_PAGE], web=[portal_websocket])


plugin = Plugin("providers", load,
                models=(ServiceProvider, ProviderStaff, ProviderApiKey, ProviderApiNonce, ProviderReport))
