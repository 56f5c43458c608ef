"""The outbound dialling policy (issue 14): which numbers the centre may dial through its trunk, and the audit of
every dial.

A number typed by an agent into a conference is dialled only when it is one of the call's elder's contacts
(relatives, the doctor on file, the social worker, …), an emergency or public-service number
(``CC_SERVICE_NUMBERS`` and ``CC_EMERGENCY_NUMBER``), or on the supervisors' list of allowed numbers; anything else
is refused before anything is dialled, saying why. Every outbound dial — a conference party, a re-dial, a follow-up
call, an SOS call-back — is an ``AuditEntry`` (``dial.outbound``) with who, which number, why it was allowed and for
which call: the audit log, not the application log, is where numbers belong.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Forbidden, NotFound
from callcenter.audit.services import Actor, record
from callcenter.dial_policy.models import AllowedNumber
from callcenter.elders.models import Contact


class DialBasis(enum.StrEnum):
    """Why a number may be dialled."""

    CONTACT = "contact"  # one of the elder's contacts
    SERVICE = "service"  # 120, 110, 119, … (CC_SERVICE_NUMBERS, CC_EMERGENCY_NUMBER)
    ALLOWED = "allowed"  # on the supervisors' list
    ELDER = "elder"  # the elder's own number or device (follow-up calls, SOS call-backs)


class DialPurpose(enum.StrEnum):
    CONFERENCE = "conference"
    REDIAL = "conference_redial"
    FOLLOW_UP = "follow_up"
    SOS_CALLBACK = "sos_callback"
    ALARM_CALLBACK = "alarm_callback"  # an agent calling the elder from a device alarm's card
    CARE_CALL_BACK = "care_call_back"  # an agent calling the elder back from the care-calls page
    # The outbound engine's calls (callcenter.outbound), by purpose.
    CASCADE = "cascade"
    NOTIFICATION = "notification"
    OUTBOUND_CALLBACK = "callback"
    CARE_CALL = "care_call"
    REMINDER = "reminder"


async def dial_basis(session: AsyncSession, number: str, *, elder_id: int | None, service_numbers: frozenset[str],
                     now: dt.datetime) -> DialBasis:
    """Why ``number`` may be dialled for a call of ``elder_id``; ``Forbidden`` (field ``number``) when it may not."""
    if number in service_numbers:
        return DialBasis.SERVICE
    if elder_id is not None and await session.scalar(
            select(Contact.id).where(Contact.elder_id == elder_id, Contact.phone == number).limit(1)) is not None:
        return DialBasis.CONTACT
    if await session.scalar(select(AllowedNumber.id).where(
            AllowedNumber.number == number,
            or_(AllowedNumber.expires_at.is_(None), AllowedNumber.expires_at > now)).limit(1)) is not None:
        return DialBasis.ALLOWED
    raise Forbidden(f"{number} is none of this elder's contacts, no emergency or service number, and not on the "
                    "supervisors' list of allowed numbers: add it to the elder's contacts, or ask a supervisor to "
                    "allow it", code="number_not_allowed", field="number")


def record_dial(session: AsyncSession, actor: Actor, *, purpose: DialPurpose, number: str, basis: DialBasis,
                call_id: int | None = None, order_id: int | None = None) -> None:
    """The audit entry of one outbound dial, in the caller's transaction (it commits with the dial's record)."""
    record(session, actor, action="dial.outbound", target_type="call" if call_id is not None else "work_order",
           target_id=call_id if call_id is not None else order_id,
           details={"purpose": purpose.value, "number": number, "basis": basis.value,
                    **({"order_id": order_id} if order_id is not None and call_id is not None else {})})


async def allow_number(session: AsyncSession, *, number: str, label: str, reason: str,
                       expires_at: dt.datetime | None, actor: Actor) -> AllowedNumber:
    if await session.scalar(select(AllowedNumber.id).where(AllowedNumber.number == number)) is not None:
        raise Conflict(f"{number} is allowed already", field="number")
    allowed = AllowedNumber(number=number, label=label, reason=reason, expires_at=expires_at,
                            added_by_id=actor.id)
    session.add(allowed)
    await session.flush()
    record(session, actor, action="dial.number_allowed", target_type="allowed_number", target_id=allowed.id,
           details={"number": number, "label": label, "reason": reason,
                    "expires_at": expires_at.isoformat() if expires_at else None})
    return allowed


async def withdraw_number(session: AsyncSession, allowed_id: int, *, actor: Actor) -> AllowedNumber:
    allowed = await session.get(AllowedNumber, allowed_id)
    if allowed is None:
        raise NotFound(f"no allowed number {allowed_id}", field="id")
    await session.delete(allowed)
    record(session, actor, action="dial.number_withdrawn", target_type="allowed_number", target_id=allowed_id,
           details={"number": allowed.number, "label": allowed.label})
    return allowed


async def list_allowed(session: AsyncSession) -> list[AllowedNumber]:
    return list((await session.scalars(select(AllowedNumber).order_by(AllowedNumber.number))).all())
