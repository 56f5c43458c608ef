from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from callcenter.api import http as api_http
from callcenter.api.context import CENTRE_TIMEZONE, DATABASE, PROVIDER_API_MAX_SKEW, TOKENS
from callcenter.api.middleware import api_middleware
from callcenter.api.openapi import build_document
from callcenter.api.registry import ApiRoute, register
from callcenter.api.tokens import TokenService
from callcenter.config import Settings, tile_origin
from callcenter.contract import Page, PageSection
from callcenter.db.session import Database
from callcenter.health import http as health_http
from callcenter.health.services import HealthService
from callcenter.users import http as users_http
from callcenter.users.login_guard import LOGIN_GUARD, LoginGuard
from callcenter.web import pages
from callcenter.web.forwarded import forwarded_middleware


@dataclasses.dataclass(frozen=True, slots=True)
class WebParts:
    """What the plugins contribute to the web application (``platform.assemble`` gathers it)."""

    db: Database
    tokens: TokenService
    settings: Settings
    services: Mapping[web.AppKey[Any], Any]  # every plugin's shared services, where their handlers find them
    routes: Sequence[ApiRoute]  # every plugin's REST routes (/api/v1); the OpenAPI document is built from them
    pages: Sequence[Page] = ()  # every plugin's pages (the status page, the agent page, …)
    sections: Sequence[PageSection] = ()  # the parts plugins add to other plugins' pages
    extras: Sequence[Callable[[web.Application], None]] = ()  # WebSockets


def _image_origins(settings: Settings) -> list[str]:
    """The map's tile server, the one place outside the panel its pages show images from (and only when set)."""
    return [tile_origin(settings.map_tile_url)] if settings.map_tile_url else []


def create_app(health: HealthService, parts: WebParts | None = None) -> web.Application:
    """The web application: /healthz always; the REST API and the pages (log-in, the status page, the agent
    page at /, …) when the plugins' parts are given."""
    middlewares = []
    login_guard: LoginGuard | None = None
    if parts is not None:
        login_guard = parts.services[LOGIN_GUARD]
        # The client's address first (behind a trusted proxy), then the log-in flood's fast path: a refused address
        # costs nothing else (users.http).
        middlewares = [forwarded_middleware(parts.settings.trusted_proxies),
                       users_http.login_flood_middleware(login_guard), api_middleware(parts.db, parts.tokens)]
    app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=middlewares)
    health_http.register(app, health)
    if parts is not None:
        assert login_guard is not None
        app[DATABASE] = parts.db
        app[TOKENS] = parts.tokens
        app[CENTRE_TIMEZONE] = parts.settings.timezone
        app[PROVIDER_API_MAX_SKEW] = parts.settings.provider_api_max_skew
        for key, service in parts.services.items():
            app[key] = service
        routes = register(app, [*parts.routes, *api_http.routes])
        app[api_http.DOCUMENT] = api_http.OpenApiDocument.model_validate(build_document(routes))
        for extra in parts.extras:
            extra(app)
        pages.register(app, db=parts.db, tokens=parts.tokens, login_guard=login_guard,
                       cookie_secure=parts.settings.cookie_secure, pages=parts.pages,
                       sections=parts.sections, image_origins=_image_origins(parts.settings))
    return app
