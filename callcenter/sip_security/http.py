"""/api/v1/sip-bans: the addresses SIP brute-force protection banned. Supervisors (and admins) read the bans in
force; admins lift one before its time."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.sip_security.schemas import SipBanLifted, SipBanList, SipBanOut
from callcenter.sip_security.services import SIP_GUARD, active_bans
from callcenter.users.models import Role

routes = ApiRoutes("sip-bans")
READERS = (Role.SUPERVISOR,)


@routes.route("GET", "/sip-bans", summary="List the SIP bans in force, oldest first", response=SipBanList,
              roles=READERS, description="Each: the address, the failures that banned it, since and until when.")
async def index(request: ApiRequest) -> SipBanList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return SipBanList(items=[SipBanOut.model_validate(ban) for ban in await active_bans(session)])


@routes.route("DELETE", "/sip-bans/{id}", summary="Lift a SIP ban before its time", response=SipBanLifted,
              roles=(), errors=(409,),
              description="Asterisk serves the address again at once (re-rendered ACL, PJSIP reload); audited. "
                          "A ban no longer in force answers 409.")
async def lift(request: ApiRequest) -> SipBanLifted:
    lifted = await request.require(SIP_GUARD).lift(request.params["id"], request.actor)
    return SipBanLifted(**SipBanOut.model_validate(lifted.ban).model_dump(), provisioning=lifted.provisioning.value)
