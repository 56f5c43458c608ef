"""HTTP routes of the system domain: liveness, readiness (``/healthz``) and the status page.

* ``GET /healthz/live``: 200 whenever the process's event loop answers at all. It checks nothing else on purpose:
  a liveness failure makes an orchestrator restart the process, which must never happen because Asterisk or the
  database is away (a restart would not bring them back and would drop the AMI resync state).
* ``GET /healthz/ready`` and ``GET /healthz`` (the same answer, kept for existing monitors and the compose file's
  healthcheck): 503 only while SOS handling itself is impaired (an SOS-critical check failing: AMI, FastAGI); 200
  with ``"status": "degraded"`` and the failing checks in ``failing`` while something non-critical is (database,
  disk space, …); 200 with ``"status": "ok"`` when everything passes.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.health.services import HealthService

HEALTH_KEY = web.AppKey("health", HealthService)
# A monitor must see the state of now, never a cached one.
NO_STORE = {"Cache-Control": "no-store"}


async def ready(request: web.Request) -> web.Response:
    """200 (``ok`` or ``degraded``) while an SOS is handled as it must be; 503 (``down``) otherwise."""
    report = await request.app[HEALTH_KEY].check()
    return web.json_response(report.as_dict(), status=200 if report.ready else 503, headers=NO_STORE)


async def live(_request: web.Request) -> web.Response:
    """200 as long as the event loop runs this handler: a stuck loop answers nothing and the probe times out."""
    return web.json_response({"status": "alive"}, headers=NO_STORE)


def register(app: web.Application, health: HealthService) -> None:
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", ready)
    app.router.add_get("/healthz/ready", ready)
    app.router.add_get("/healthz/live", live)
