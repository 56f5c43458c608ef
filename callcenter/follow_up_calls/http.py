"""/api/v1/work-orders/{id}/follow-up-call: one click rings your phone and, when you answer, dials the elder."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import Field

from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.api.schemas import ResponseSchema
from callcenter.follow_up_calls.services import FollowUpDialer
from callcenter.users.models import Role

routes = ApiRoutes("work-orders")
FOLLOW_UP_DIALER = web.AppKey("api_follow_up_dialer", FollowUpDialer)


class FollowUpCallOut(ResponseSchema):
    order_id: int
    call_id: int = Field(description="the call: give it as follow_up.call_id when recording the follow-up")
    linkedid: str
    extension: str = Field(description="your phone, rung first")
    number: str = Field(description="the elder's number on file, dialled once you answer")
    started_at: dt.datetime


@routes.route("POST", "/work-orders/{id}/follow-up-call", summary="Call the elder back: rings your phone first",
              response=FollowUpCallOut, status=201, roles=(Role.SUPERVISOR, Role.AGENT),
              errors=(404, 409, 422, 503))
async def follow_up_call(request: ApiRequest) -> FollowUpCallOut:
    """For an order waiting for its follow-up: your account's extension rings, and when you answer, the elder's
    number on file is dialled through the trunk. The call is on the order's trail at once (``follow_up_call``),
    then the elder's outcome (``follow_up_call_result``) or why your phone was not reached
    (``follow_up_call_failed``). 409: the order is not in follow-up, your account has no extension, no trunk is
    configured or your phone is already ringing for it; 422: no dialable number for the elder; 503: Asterisk is
    not reachable (nothing was recorded)."""
    placed = await request.http.app[FOLLOW_UP_DIALER].dial(request.params["id"], user_id=request.user.user_id,
                                                             username=request.user.username)
    return FollowUpCallOut(order_id=placed.order_id, call_id=placed.call_id, linkedid=placed.linkedid,
                           extension=placed.extension, number=placed.number, started_at=placed.started_at)


alarm_routes = ApiRoutes("alarms")


@alarm_routes.route("POST", "/alarms/{id}/call", summary="Call the alarm's elder: rings your phone first",
                    response=FollowUpCallOut, status=201, roles=(Role.SUPERVISOR, Role.AGENT),
                    errors=(404, 409, 422, 503))
async def alarm_call(request: ApiRequest) -> FollowUpCallOut:
    """Click-to-dial from the alarm card, for an alarm taken (or responding): your account's extension rings, and
    when you answer, the elder's number on file is dialled through the trunk, recorded. The call is on the trail
    of the alarm's work order (``follow_up_call``, purpose ``alarm_callback``), then the elder's outcome. 409: the
    alarm is not taken, your account has no extension, no trunk is configured or your phone is already ringing
    for it; 422: no elder, or no dialable number for them; 503: Asterisk is not reachable (nothing recorded)."""
    placed = await request.http.app[FOLLOW_UP_DIALER].dial_for_alarm(
        request.params["id"], user_id=request.user.user_id, username=request.user.username)
    return FollowUpCallOut(order_id=placed.order_id, call_id=placed.call_id, linkedid=placed.linkedid,
                           extension=placed.extension, number=placed.number, started_at=placed.started_at)
