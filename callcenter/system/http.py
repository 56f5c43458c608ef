"""HTTP routes of the system domain: /healthz and the status page."""

from __future__ import annotations

from aiohttp import web

from callcenter.system.services import HealthService

HEALTH_KEY = web.AppKey("health", HealthService)


async def healthz(request: web.Request) -> web.Response:
    """200 when AMI is logged in, FastAGI is listening and the database answers; 503 otherwise."""
    report = await request.app[HEALTH_KEY].check()
    return web.json_response(report.as_dict(), status=200 if report.ok else 503)


def register(app: web.Application, health: HealthService) -> None:
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", healthz)
