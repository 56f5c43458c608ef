"""Identifying who is calling: by the authenticated device endpoint first, then by caller ID."""

from __future__ import annotations

import dataclasses

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import IdentifiedBy
from callcenter.devices.models import Device, DeviceStatus
from callcenter.elders.models import Elder

# A device that is retired must not speak for an elder any more; a faulty one still may (it is calling).
_IDENTIFYING_STATUSES = (DeviceStatus.ACTIVE, DeviceStatus.FAULTY)


@dataclasses.dataclass(frozen=True, slots=True)
class Identification:
    elder_id: int | None
    device_id: int | None
    method: IdentifiedBy

    @property
    def known(self) -> bool:
        return self.elder_id is not None


UNKNOWN = Identification(None, None, IdentifiedBy.NONE)


async def identify_caller(session: AsyncSession, endpoint: str, caller_number: str) -> Identification:
    """Who is on the line: the device's own SIP identity is proof; a caller ID is a strong hint."""
    if endpoint:
        device = await session.scalar(
            select(Device).where(Device.sip_username == endpoint, Device.status.in_(_IDENTIFYING_STATUSES))
        )
        if device is not None and device.elder_id is not None:
            return Identification(device.elder_id, device.id, IdentifiedBy.DEVICE)
    number = normalise_number(caller_number)
    if number:
        device = await session.scalar(
            select(Device).where(Device.phone_number == number, Device.status.in_(_IDENTIFYING_STATUSES),
                                 Device.elder_id.is_not(None))
        )
        if device is not None:
            return Identification(device.elder_id, device.id, IdentifiedBy.CALLER_ID)
        elder_ids = (await session.scalars(select(Elder.id).where(or_(Elder.phone == number)).limit(2))).all()
        # Two elders sharing a landline (a couple) cannot be told apart by number alone.
        if len(elder_ids) == 1:
            return Identification(elder_ids[0], None, IdentifiedBy.CALLER_ID)
    return UNKNOWN


def normalise_number(number: str) -> str:
    """Digits only, without the +86 / 0086 country prefix, so stored and presented numbers compare equal."""
    digits = "".join(ch for ch in number if ch.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 11:
            digits = digits[len(prefix):]
    return digits
