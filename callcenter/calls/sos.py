"""The SOS intake, shared by the ``sos`` AGI handler and the safety net on the emergency queue.

Every call that reaches the emergency queue must have its emergency work order. The AGI raises it before the
call is queued; if the AGI failed (the platform busy, the database locked, FastAGI down), the AMI
``QueueCallerJoin`` for the emergency queue raises it instead. Both paths use this one function, which never
raises a second order for a call.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls import services
from callcenter.calls.models import Call, CallKind
from callcenter.devices.services import Identification
from callcenter.devices.services import identify_caller as identify
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order


async def sos_intake(session: AsyncSession, *, linkedid: str, endpoint: str, caller_number: str, serial: str | None,
                     actor_label: str) -> tuple[Call, WorkOrder, Identification, bool]:
    """Identify, mark the call SOS, and make sure it has exactly one emergency order; True when raised now."""
    who = await identify(session, endpoint, caller_number)
    call = await services.attach_identity(session, linkedid=linkedid, kind=CallKind.SOS, identification=who,
                                          caller_number=caller_number, callee_number="sos")
    if serial:
        call.recording_serial = call.recording_serial or serial
    existing = await session.scalar(select(WorkOrder).where(WorkOrder.call_id == call.id,
                                                            WorkOrder.kind == WorkOrderKind.EMERGENCY).limit(1))
    if existing is not None:
        return call, existing, who, False
    elder = await session.get(Elder, who.elder_id) if who.elder_id is not None else None
    order = await raise_order(
        session, kind=WorkOrderKind.EMERGENCY, actor_label=actor_label, elder_id=who.elder_id, call_id=call.id,
        device_id=who.device_id,
        title="一键呼叫紧急求助" if elder is not None else "一键呼叫紧急求助（未识别来电）",
        location_text=elder.address if elder is not None else None,
        latitude=elder.latitude if elder is not None else None,
        longitude=elder.longitude if elder is not None else None,
        details={"caller_number": caller_number, "endpoint": endpoint, "recording_serial": serial,
                 "identified_by": who.method.value},
    )
    return call, order, who, True


_CONTACT_ORDER = {ContactRole.RELATIVE: 0, ContactRole.SOCIAL_WORKER: 1, ContactRole.VOLUNTEER: 2,
                  ContactRole.DOCTOR: 3}


async def first_contact_number(session: AsyncSession, elder_id: int | None) -> str | None:
    """Who the overflow rings last: relatives first, then the paired social worker, by priority; digits only."""
    if elder_id is None:
        return None
    contacts = (await session.scalars(select(Contact).where(Contact.elder_id == elder_id))).all()
    for contact in sorted(contacts, key=lambda c: (_CONTACT_ORDER.get(c.role, 9), c.priority)):
        digits = "".join(ch for ch in contact.phone if ch.isdigit())
        if digits:
            return digits
    return None


def endpoint_of(channel: str) -> str:
    """``PJSIP/dev-7-0000002a`` → ``dev-7``."""
    tech, _, rest = channel.partition("/")
    return rest.rsplit("-", 1)[0] if tech == "PJSIP" else ""
