"""/api/v1/calls: the call log, read-only (admin, supervisor, agent, auditor)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.calls.queries import find_calls, get_call
from callcenter.calls.schemas import CallDetail, CallPage, CallQuery
from callcenter.users.models import Role

routes = ApiRoutes("calls")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)


@routes.route("GET", "/calls", summary="List calls, newest first", query=CallQuery, response=CallPage,
              roles=READERS, description="Datetimes are ISO 8601 with an offset; a naive one is rejected (422).")
async def index(request: ApiRequest) -> CallPage:
    query: CallQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await find_calls(session, elder_id=query.elder_id, since=query.since, until=query.until,
                                 kind=query.kind, limit=query.limit, offset=query.offset)
        return CallPage.of(found, query)


@routes.route("GET", "/calls/{id}", summary="Read a call with its legs", response=CallDetail, roles=READERS)
async def show(request: ApiRequest) -> CallDetail:
    async with request.require(DATABASE).transaction() as session:
        return CallDetail.model_validate(await get_call(session, request.params["id"]))
