"""AGI handlers of the calls domain: who is calling, and the SOS intake."""

from __future__ import annotations

from callcenter.calls import services, sos
from callcenter.calls.journal import SOS_INTAKE
from callcenter.calls.models import CallKind
from callcenter.db.retry import is_transient_or_race, with_retry
from callcenter.db.session import Database
from callcenter.devices.services import Identification
from callcenter.devices.services import identify_caller as identify
from callcenter.journal import Journal
from callcenter.logs import get_logger
from callcenter.telephony.fastagi import AgiChannel, AgiRequest

log = get_logger(__name__)

# SOS intake's deadline while the journal holds writes the database has not taken yet.
KNOWN_AWAY_SECONDS = 0.5

async def _publish_identity(channel: AgiChannel, call_id: int, who: Identification, kind: CallKind) -> None:
    await channel.set_variable("CC_CALL_ID", call_id)
    await channel.set_variable("CC_ELDER_ID", who.elder_id or "")
    await channel.set_variable("CC_DEVICE_ID", who.device_id or "")
    await channel.set_variable("CC_IDENTIFIED", who.method.value)
    await channel.set_variable("CC_CALL_KIND", kind.value)


async def identify_caller(db: Database, request: AgiRequest, channel: AgiChannel) -> None:
    """``identify-caller,<endpoint>,<linkedid>,<dialled>``: find the elder behind the line, log it on the call, answer.

    Sets CC_CALL_ID, CC_ELDER_ID, CC_DEVICE_ID (empty when unknown), CC_IDENTIFIED (device | caller_id | none)
    and CC_CALL_KIND for the dialplan and later handlers.
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
    await _publish_identity(channel, call_id, who, kind)
    await channel.answer()


async def sos_intake(db: Database, deadline: float, journal: Journal | None, request: AgiRequest,
                     channel: AgiChannel) -> None:
    """``sos,<endpoint>,<linkedid>,<recording serial>``: identify, log, and raise the emergency work order.

    Runs after the dialplan answered, started recording and started the reassurance music; it must be quick, the
    elder is waiting for an agent. Its write is urgent (it goes before every other writer waiting on SQLite) and is
    retried on every busy, locked or lost-connection error for at most ``deadline`` seconds (CC_SOS_INTAKE_SECONDS).
    Past that the intake goes to the journal (calls.journal, replayed when the database answers again), the
    handler fails, and the dialplan queues the call anyway; the emergency-queue safety net (calls/events.py) raises
    the order too, whichever comes first. Sets the identity variables (see identify_caller) and CC_ORDER_ID.
    """
    endpoint, linkedid, serial = request.arg(0), request.arg(1) or request.uniqueid, request.arg(2)

    async def intake() -> tuple[int, int, str, Identification, str | None]:
        async with db.transaction(urgent=True) as session:
            call, order, who, _ = await sos.sos_intake(session, linkedid=linkedid, endpoint=endpoint,
                                                       caller_number=request.caller_number, serial=serial,
                                                       actor_label="ivr")
            return call.id, order.id, order.number, who, await sos.first_contact_number(session, who.elder_id)

    def retrying(error: BaseException, attempt: int) -> None:
        log.error("sos.intake_retry", uniqueid=request.uniqueid, linkedid=linkedid, attempt=attempt,
                  error=f"{type(error).__name__}: {str(error)[-200:]}")

    if journal is not None and journal.backlog:
        # The database is known to be away (writes already wait in the journal): no elder waits the full deadline
        # again to learn it, yet a database that has just come back still takes the intake.
        deadline = min(deadline, KNOWN_AWAY_SECONDS)
    try:
        call_id, order_id, order_number, who, contact_number = await with_retry(
            intake, deadline=deadline, retry_on=is_transient_or_race, on_retry=retrying)
    except Exception as error:
        if not isinstance(error, TimeoutError) and not is_transient_or_race(error):
            raise
        log.error("sos.intake_deadline", uniqueid=request.uniqueid, linkedid=linkedid, deadline=deadline,
                  error=f"{type(error).__name__}: {str(error)[-200:]}",
                  detail="queued without intake; journaled, and the safety net raises the order")
        if journal is not None:
            await journal.append(SOS_INTAKE, {"linkedid": linkedid, "endpoint": endpoint,
                                              "caller_number": request.caller_number, "serial": serial})
        raise
    log.warning("sos.intake", uniqueid=request.uniqueid, linkedid=linkedid, endpoint=endpoint, call_id=call_id,
                elder_id=who.elder_id, device_id=who.device_id, order=order_number, recording_serial=serial)
    await _publish_identity(channel, call_id, who, CallKind.SOS)
    await channel.set_variable("CC_ORDER_ID", order_id)
    # The last-resort fallback of the overflow: the elder's first contact (relatives first), dialled via the trunk.
    await channel.set_variable("CC_SOS_CONTACT_NUMBER", contact_number or "")
