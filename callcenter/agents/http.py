"""/api/v1/agents: who is at their phone, and logging in, out and pausing (agents themselves; supervisors for all)."""

from __future__ import annotations

from callcenter.agents.schemas import AgentList, AgentOut, PauseRequest
from callcenter.agents.services import AGENTS, AgentService
from callcenter.agents.state import AgentState
from callcenter.api.errors import Forbidden, NotFound
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.users.models import Role

routes = ApiRoutes("agents")
_MAY_ACT_FOR_OTHERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
_STAFF = (Role.SUPERVISOR, Role.AGENT)


def _out(state: AgentState) -> AgentOut:
    return AgentOut.model_validate(state.as_dict())


def _agents(request: ApiRequest) -> AgentService:
    return request.http.app[AGENTS]


def _service(request: ApiRequest) -> AgentService:
    """The agent named in the path: agents may act only for themselves."""
    if request.user.role not in _MAY_ACT_FOR_OTHERS and request.params["username"] != request.user.username:
        raise Forbidden("agents may log in, out and pause only themselves")
    return _agents(request)


@routes.route("GET", "/agents", summary="Agents' live state (from Asterisk)", response=AgentList,
              roles=(Role.SUPERVISOR, Role.AGENT, Role.AUDITOR))
async def index(request: ApiRequest) -> AgentList:
    return AgentList(items=[_out(state) for state in _agents(request).registry.all()])


@routes.route("GET", "/agents/{username}", summary="One agent's live state", response=AgentOut,
              roles=(Role.SUPERVISOR, Role.AGENT, Role.AUDITOR))
async def show(request: ApiRequest) -> AgentOut:
    state = _agents(request).state(request.params["username"])
    if state is None:
        raise NotFound(f"{request.params['username']!r} has never been logged in since the platform started")
    return _out(state)


@routes.route("POST", "/agents/{username}/login", summary="Log the agent's phone in to their queues",
              response=AgentOut, roles=_STAFF, errors=(404, 409, 422, 503))
async def login(request: ApiRequest) -> AgentOut:
    """Agents join the emergency and hotline queues; supervisors the SOS-overflow queue."""
    user = request.user
    return _out(await _service(request).login(request.params["username"], actor=user.username,
                                              actor_id=user.user_id))


@routes.route("POST", "/agents/{username}/logout", summary="Take the agent's phone out of their queues",
              response=AgentOut, roles=_STAFF, errors=(404, 409, 422, 503))
async def logout(request: ApiRequest) -> AgentOut:
    user = request.user
    return _out(await _service(request).logout(request.params["username"], actor=user.username,
                                               actor_id=user.user_id))


@routes.route("POST", "/agents/{username}/pause", summary="Pause the agent, with a reason", body=PauseRequest,
              response=AgentOut, roles=_STAFF, errors=(404, 409, 422, 503))
async def pause(request: ApiRequest) -> AgentOut:
    user, body = request.user, request.body
    return _out(await _service(request).pause(request.params["username"], body.reason, actor=user.username,
                                              actor_id=user.user_id))


@routes.route("POST", "/agents/{username}/unpause", summary="End the agent's pause", response=AgentOut,
              roles=_STAFF, errors=(404, 409, 422, 503))
async def unpause(request: ApiRequest) -> AgentOut:
    user = request.user
    return _out(await _service(request).unpause(request.params["username"], actor=user.username,
                                                actor_id=user.user_id))
