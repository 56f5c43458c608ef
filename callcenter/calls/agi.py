"""AGI handlers of the calls domain."""

from __future__ import annotations

from callcenter.calls import services
from callcenter.db.session import Database
from callcenter.devices.services import identify_caller as identify
from callcenter.logs import get_logger
from callcenter.telephony.fastagi import AgiChannel, AgiRequest

log = get_logger(__name__)


async def identify_caller(db: Database, request: AgiRequest, channel: AgiChannel) -> None:
    """``identify-caller,<endpoint>,<linkedid>,<dialled>``: find the elder behind the line, log it on the call, answer.

    Sets CC_ELDER_ID, CC_DEVICE_ID (empty when unknown), CC_IDENTIFIED (device | caller_id | none) and
    CC_CALL_KIND for the dialplan and later handlers.
    """
    endpoint, linkedid = request.arg(0), request.arg(1) or request.uniqueid
    # The dialplan jumps to a shared context, so the dialled number travels as an argument.
    dialled = request.arg(2) or request.extension
    async with db.transaction() as session:
        who = await identify(session, endpoint, request.caller_number)
        kind = services.call_kind_for_extension(dialled)
        call = await services.attach_identity(session, linkedid=linkedid, kind=kind, identification=who,
                                              caller_number=request.caller_number, callee_number=dialled)
        call_id = call.id
    log.info("call.identified", uniqueid=request.uniqueid, linkedid=linkedid, endpoint=endpoint,
             elder_id=who.elder_id, device_id=who.device_id, method=who.method.value, kind=kind.value,
             call_id=call_id)
    await channel.set_variable("CC_CALL_ID", call_id)
    await channel.set_variable("CC_ELDER_ID", who.elder_id or "")
    await channel.set_variable("CC_DEVICE_ID", who.device_id or "")
    await channel.set_variable("CC_IDENTIFIED", who.method.value)
    await channel.set_variable("CC_CALL_KIND", kind.value)
    await channel.answer()
