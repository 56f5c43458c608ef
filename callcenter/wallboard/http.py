"""/api/v1/wallboard: the supervisors' live board (the same snapshot the ``wallboard`` push carries)."""

from __future__ import annotations

from aiohttp import web

from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.users.models import Role
from callcenter.wallboard.schemas import WallboardOut
from callcenter.wallboard.services import WallboardService

routes = ApiRoutes("wallboard")
WALLBOARD = web.AppKey("api_wallboard", WallboardService)
ROLES = (Role.SUPERVISOR,)  # and admins, always


@routes.route("GET", "/wallboard", summary="Queues, calls in progress and agents, live", response=WallboardOut,
              roles=ROLES, errors=(503,))
async def show(request: ApiRequest) -> WallboardOut:
    """Waiting callers and their waits are Asterisk's (AMI, resynced with QueueStatus after every login); calls'
    details and today's counts (the centre's local day, CC_TIMEZONE) come from the call log. Changes are pushed
    over /ws as ``{"type": "wallboard", ...}`` with this body, at most a few times a second."""
    return await request.http.app[WALLBOARD].snapshot()
