from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from callcenter import __version__
from callcenter.system import http as system_http
from callcenter.system.services import HealthService

TEMPLATES = Path(__file__).parent / "templates"
_pages = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)


def create_app(health: HealthService) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    system_http.register(app, health)

    async def index(_request: web.Request) -> web.Response:
        report = await health.check()
        html = _pages.get_template("index.html").render(report=report, version=__version__)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    app.router.add_get("/", index)
    return app
