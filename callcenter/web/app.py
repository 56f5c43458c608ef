from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from callcenter import __version__
from callcenter.agents import http as agents_http
from callcenter.api import http as api_http
from callcenter.api.context import (
    AGENTS,
    CENTRE_TIMEZONE,
    DATABASE,
    LOGIN_GUARD,
    ORDER_NOTIFIER,
    PROVIDER_API_MAX_SKEW,
    PROVISIONER,
    RECORDINGS,
    TOKENS,
    ApiServices,
)
from callcenter.api.middleware import api_middleware
from callcenter.api.openapi import build_document
from callcenter.api.registry import ApiRoute, register
from callcenter.audit import http as audit_http
from callcenter.calls import http as calls_http
from callcenter.conferences import http as conferences_http
from callcenter.desk import http as desk_http
from callcenter.desk.hub import PanelHub
from callcenter.desk.screenpop import ScreenPops
from callcenter.devices import http as devices_http
from callcenter.elders import http as elders_http
from callcenter.follow_up_calls import http as followup_http
from callcenter.health import http as system_http
from callcenter.health.services import HealthService
from callcenter.orders import http as orders_http
from callcenter.orders.notify import OrderNotifier
from callcenter.providers import http as providers_http
from callcenter.recordings import http as recordings_http
from callcenter.retention import http as retention_http
from callcenter.spy import http as supervision_http
from callcenter.supervision_cases import http as escalations_http
from callcenter.users import http as users_http
from callcenter.users.login_guard import LoginGuard
from callcenter.volunteers import http as volunteers_http
from callcenter.wallboard import http as wallboard_http
from callcenter.web import pages
from callcenter.web.i18n import language_of, translator

TEMPLATES = Path(__file__).parent / "templates"
_pages = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)

# Every domain's REST routes (/api/v1); the OpenAPI document is built from exactly this table.
API_ROUTES = (users_http.routes, elders_http.routes, devices_http.routes, calls_http.routes, orders_http.routes,
              providers_http.routes, agents_http.routes, conferences_http.routes, supervision_http.routes,
              retention_http.routes,
              escalations_http.routes,
              followup_http.routes,
              volunteers_http.routes,
              recordings_http.routes, audit_http.routes, wallboard_http.routes, api_http.routes)


def api_routes() -> list[ApiRoute]:
    return [route for table in API_ROUTES for route in table]


def create_app(health: HealthService, api: ApiServices | None = None,
               desk: tuple[PanelHub, ScreenPops] | None = None, *, cookie_secure: bool = False) -> web.Application:
    """The web application: /healthz and the status page (/status) always; the REST API and the panel's pages
    (log-in, the agent page at /) when its services are given."""
    login_guard: LoginGuard | None = None
    middlewares = []
    if api is not None:
        login_guard = api.login_guard if api.login_guard is not None else LoginGuard()
        # The log-in flood's fast path first: a refused address costs nothing else (users.http).
        middlewares = [users_http.login_flood_middleware(login_guard), api_middleware(api.db, api.tokens)]
    app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=middlewares)
    system_http.register(app, health)
    if api is not None:
        app[DATABASE] = api.db
        app[TOKENS] = api.tokens
        app[PROVISIONER] = api.provisioner
        app[CENTRE_TIMEZONE] = api.timezone
        app[PROVIDER_API_MAX_SKEW] = api.provider_api_max_skew
        app[ORDER_NOTIFIER] = api.notifier if api.notifier is not None else OrderNotifier()
        assert login_guard is not None
        app[LOGIN_GUARD] = login_guard
        if api.agents is not None:
            app[AGENTS] = api.agents
        if api.conferences is not None:
            app[conferences_http.CONFERENCES] = api.conferences
        if api.recordings is not None:
            app[RECORDINGS] = api.recordings
        if api.spy is not None:
            app[supervision_http.SPY] = api.spy
        if api.wallboard is not None:
            app[wallboard_http.WALLBOARD] = api.wallboard
        if api.follow_ups is not None:
            app[followup_http.FOLLOW_UP_DIALER] = api.follow_ups
        elders_http.register_imports(app, api.db)
        routes = register(app, api_routes())
        app[api_http.DOCUMENT] = api_http.OpenApiDocument.model_validate(build_document(routes))
        if desk is not None:
            hub, pops = desk
            desk_http.register(app, hub=hub, pops=pops, db=api.db, tokens=api.tokens)
        pages.register(app, db=api.db, tokens=api.tokens, login_guard=login_guard, cookie_secure=cookie_secure)

    async def index(request: web.Request) -> web.Response:
        report = await health.check()
        language = language_of(request)
        html = _pages.get_template("index.html").render(report=report, version=__version__, lang=language,
                                                        t=translator(language, "status"))
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    app.router.add_get("/status", index)
    return app
