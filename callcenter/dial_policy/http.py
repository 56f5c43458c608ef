"""/api/v1/allowed-numbers: the numbers supervisors allow agents to dial into a conference besides the elder's
contacts and the service numbers (dial_policy.services)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.dial_policy.schemas import AllowedNumberCreate, AllowedNumberList, AllowedNumberOut
from callcenter.dial_policy.services import allow_number, list_allowed, withdraw_number
from callcenter.users.models import Role

routes = ApiRoutes("dial_policy")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)
WRITERS = (Role.SUPERVISOR,)


@routes.route("GET", "/allowed-numbers", summary="List the numbers supervisors allowed to be dialled",
              response=AllowedNumberList, roles=READERS)
async def index(request: ApiRequest) -> AllowedNumberList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return AllowedNumberList(items=[AllowedNumberOut.model_validate(a) for a in await list_allowed(session)])


@routes.route("POST", "/allowed-numbers", summary="Allow a number to be dialled into conferences",
              body=AllowedNumberCreate, response=AllowedNumberOut, status=201, roles=WRITERS, errors=(409,))
async def create(request: ApiRequest) -> AllowedNumberOut:
    """Audited with the reason; agents may then add it to any conference until it expires or is withdrawn."""
    body: AllowedNumberCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        allowed = await allow_number(session, number=body.number.lstrip("+"), label=body.label, reason=body.reason,
                                     expires_at=body.expires_at, actor=request.actor)
        return AllowedNumberOut.model_validate(allowed)


@routes.route("DELETE", "/allowed-numbers/{id}", summary="Withdraw an allowed number", response=AllowedNumberOut,
              roles=WRITERS)
async def withdraw(request: ApiRequest) -> AllowedNumberOut:
    async with request.require(DATABASE).transaction() as session:
        return AllowedNumberOut.model_validate(await withdraw_number(session, request.params["id"],
                                                                     actor=request.actor))
