"""The alarm card's data (issue 15): what an agent's panel shows when the alarm distributor
(``alarms.distribution``) offers them an alarm — the alarm as the REST API reads it (type, severity, times, where
the device was, its work order), the elder's file, the device, recent calls and open orders, exactly as the
screen-pop shows them (``screenpop.elder_file``).

``readings`` (the last readings) and ``track`` (the device's recent positions, for the map) are the places the
readings and locations domains fill in: None until they do, and the card shows them only when given.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.distribution import alarm_facts
from callcenter.alarms.models import Alarm
from callcenter.desk.screenpop import elder_file
from callcenter.devices.models import Device
from callcenter.elders.models import Elder


async def build_alarm_card(session: AsyncSession, alarm: Alarm) -> dict[str, Any]:
    elder = await session.get(Elder, alarm.elder_id) if alarm.elder_id is not None else None
    device = await session.get(Device, alarm.device_id) if alarm.device_id is not None else None
    return {"alarm": await alarm_facts(session, alarm), **await elder_file(session, elder, device),
            "readings": None, "track": None}
