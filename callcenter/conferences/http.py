"""/api/v1/calls/{call_id}/conference: the one-click emergency conference (the call's agent; supervisors)."""

from __future__ import annotations

from aiohttp import web

from callcenter.api.context import DATABASE
from callcenter.api.errors import Forbidden, NotFound
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.calls.models import Call
from callcenter.conferences.models import PartyState
from callcenter.conferences.schemas import Done, ParticipantCreate, ParticipantOut, Roster
from callcenter.conferences.services import ConferenceService
from callcenter.users.models import Role

routes = ApiRoutes("conference")
CONFERENCES = web.AppKey("api_conferences", ConferenceService)
_STAFF = (Role.SUPERVISOR, Role.AGENT)
_ERRORS = (404, 409, 503)


async def _service(request: ApiRequest) -> ConferenceService:
    """Only the agent on the call (or a supervisor) runs its conference."""
    user = request.user
    if user.role is Role.AGENT:
        async with request.require(DATABASE).transaction() as session:
            call = await session.get(Call, request.params["call_id"])
        if call is not None and call.agent_id != user.user_id:
            raise Forbidden("only the agent on this call may run its conference")
    return request.http.app[CONFERENCES]


@routes.route("GET", "/calls/{call_id}/conference", summary="The conference roster of a call", response=Roster,
              roles=_STAFF, errors=(404,))
async def roster(request: ApiRequest) -> Roster:
    service = await _service(request)
    call_id = request.params["call_id"]
    async with request.require(DATABASE).transaction() as session:
        if await session.get(Call, call_id) is None:  # as documented: not an empty roster of no call
            raise NotFound(f"no call {call_id}", field="call_id")
        participants = await service.roster(session, call_id)
        return Roster(call_id=call_id, active=any(p.state is PartyState.JOINED for p in participants),
                      participants=[ParticipantOut.model_validate(p) for p in participants])


@routes.route("POST", "/calls/{call_id}/conference/participants", summary="Add a party (starts the conference)",
              body=ParticipantCreate, response=ParticipantOut, status=201, roles=_STAFF, errors=(*_ERRORS, 422))
async def add(request: ApiRequest) -> ParticipantOut:
    """The elder and the agent are moved into the conference first (never dropped); the party is dialled with the
    centre's caller ID. The answer is the party as ``ringing``; the roster follows it to joined or failed."""
    body: ParticipantCreate = request.body
    party = await (await _service(request)).add_party(request.params["call_id"], body.role,
                                                      contact_id=body.contact_id, number=body.number,
                                                      actor_id=request.user.user_id)
    return ParticipantOut.model_validate(party)


@routes.route("POST", "/calls/{call_id}/conference/participants/{participant_id}/redial",
              summary="Dial a failed or departed party again", response=ParticipantOut, roles=_STAFF,
              errors=_ERRORS)
async def redial(request: ApiRequest) -> ParticipantOut:
    service = await _service(request)
    return ParticipantOut.model_validate(await service.redial(request.params["call_id"],
                                                              request.params["participant_id"],
                                                              actor_id=request.user.user_id))


@routes.route("DELETE", "/calls/{call_id}/conference/participants/{participant_id}",
              summary="Remove a party from the conference", response=Done, roles=_STAFF, errors=_ERRORS)
async def remove(request: ApiRequest) -> Done:
    await (await _service(request)).remove(request.params["call_id"], request.params["participant_id"])
    return Done()


@routes.route("POST", "/calls/{call_id}/conference/participants/{participant_id}/mute", summary="Mute a party",
              response=Done, roles=_STAFF, errors=_ERRORS)
async def mute(request: ApiRequest) -> Done:
    await (await _service(request)).mute(request.params["call_id"], request.params["participant_id"])
    return Done()


@routes.route("POST", "/calls/{call_id}/conference/participants/{participant_id}/unmute",
              summary="Unmute a party", response=Done, roles=_STAFF, errors=_ERRORS)
async def unmute(request: ApiRequest) -> Done:
    await (await _service(request)).unmute(request.params["call_id"], request.params["participant_id"])
    return Done()


@routes.route("POST", "/calls/{call_id}/conference/leave", summary="The agent leaves; the others stay connected",
              response=Done, roles=_STAFF, errors=_ERRORS)
async def leave(request: ApiRequest) -> Done:
    await (await _service(request)).leave(request.params["call_id"])
    return Done()


@routes.route("POST", "/calls/{call_id}/conference/end", summary="End the conference for everyone",
              response=Done, roles=_STAFF, errors=_ERRORS)
async def end(request: ApiRequest) -> Done:
    await (await _service(request)).end(request.params["call_id"], actor_id=request.user.user_id)
    return Done()
