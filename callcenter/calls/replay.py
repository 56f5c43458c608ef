"""What the call log's journal holds, applied to the database once it answers again (calls.journal)."""

from __future__ import annotations

from typing import Any

from callcenter.calls import sos
from callcenter.calls.events import CallEventRecorder
from callcenter.calls.journal import AMI_EVENT, SOS_INTAKE
from callcenter.db.session import Database
from callcenter.journal import Apply
from callcenter.logs import get_logger
from callcenter.telephony.ami import AmiEvent

log = get_logger(__name__)


def journal_applier(db: Database, recorder: CallEventRecorder) -> Apply:
    """Each entry through the handler that would have stored it live: both are idempotent."""

    async def apply(kind: str, payload: dict[str, Any]) -> None:
        if kind == AMI_EVENT:
            await recorder.apply(AmiEvent(payload))
        elif kind == SOS_INTAKE:
            async with db.transaction(urgent=True) as session:
                call, order, _, raised = await sos.sos_intake(
                    session, linkedid=str(payload["linkedid"]), endpoint=str(payload.get("endpoint") or ""),
                    caller_number=str(payload.get("caller_number") or ""), serial=payload.get("serial") or None,
                    actor_label="journal")
            log.warning("sos.intake_replayed", linkedid=payload["linkedid"], call_id=call.id, order=order.number,
                        raised=raised)
        else:
            log.error("journal.unknown_entry", kind=kind)

    return apply
