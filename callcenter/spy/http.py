"""/api/v1/calls/{call_id}/spy: a supervisor listens to, whispers to or barges into an agent's live call."""

from __future__ import annotations

from aiohttp import web

from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.spy.schemas import SpyOut, SpyRequest
from callcenter.spy.services import SpyService, SpySession
from callcenter.users.models import Role

routes = ApiRoutes("supervision")
SPY = web.AppKey("api_spy", SpyService)
_SUPERVISORS = (Role.SUPERVISOR,)  # and admins, always
_ERRORS = (404, 409, 503)


def _service(request: ApiRequest) -> SpyService:
    return request.http.app[SPY]


def _out(spy: SpySession) -> SpyOut:
    return SpyOut(id=spy.id, call_id=spy.call_id, supervisor=spy.supervisor, agent_channel=spy.agent_channel,
                  mode=spy.mode, state=spy.state, started_at=spy.started_at, ended_at=spy.ended_at,
                  end_reason=spy.end_reason)


@routes.route("POST", "/calls/{call_id}/spy", summary="Listen, whisper or barge: rings your phone", body=SpyRequest,
              response=SpyOut, status=201, roles=_SUPERVISORS, errors=_ERRORS)
async def start(request: ApiRequest) -> SpyOut:
    """Your phone (your account's extension) is called; when you answer it is attached to the agent's channel in
    the chosen mode. Audited."""
    body: SpyRequest = request.body
    return _out(await _service(request).start(request.params["call_id"], body.mode, request.actor,
                                              request.user.role))


@routes.route("GET", "/calls/{call_id}/spy", summary="Your spy on this call: its mode and state",
              response=SpyOut, roles=_SUPERVISORS, errors=(404, 503))
async def show(request: ApiRequest) -> SpyOut:
    return _out(_service(request).active(request.user.username, request.params["call_id"]))


@routes.route("PATCH", "/calls/{call_id}/spy", summary="Switch listen / whisper / barge", body=SpyRequest,
              response=SpyOut, roles=_SUPERVISORS, errors=_ERRORS)
async def switch(request: ApiRequest) -> SpyOut:
    body: SpyRequest = request.body
    return _out(await _service(request).switch(request.params["call_id"], body.mode, request.actor))


@routes.route("DELETE", "/calls/{call_id}/spy", summary="Stop listening (hangs up your phone's spy line)",
              response=SpyOut, roles=_SUPERVISORS, errors=_ERRORS)
async def stop(request: ApiRequest) -> SpyOut:
    return _out(await _service(request).stop(request.params["call_id"], request.actor))
