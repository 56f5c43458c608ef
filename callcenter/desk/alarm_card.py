"""The alarm card's data (issue 15): what an agent's panel shows when the alarm distributor
(``alarms.distribution``) offers them an alarm — the alarm as the REST API reads it (type, severity, times, where
the device was, its work order), the elder's file, the device, recent calls and open orders, exactly as the
screen-pop shows them (``screenpop.elder_file``).

``readings`` (the last readings) is the place the readings domain fills in: None until it does. ``track`` is the
elder's fixes of the last day as ``GET /api/v1/elders/{id}/positions`` lists them (WGS-84 with their accuracy,
oldest first), None without any: the card's map draws it with the home and the alarm's position.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.distribution import alarm_facts
from callcenter.alarms.models import Alarm
from callcenter.db.base import utcnow
from callcenter.desk.screenpop import elder_file
from callcenter.devices.models import Device
from callcenter.elders.models import Elder
from callcenter.locations import services as locations

TRACK_PERIOD = dt.timedelta(hours=24)
TRACK_FIXES = 200  # the newest of the period: enough for a line on a small map, small enough for a pushed card


async def build_alarm_card(session: AsyncSession, alarm: Alarm) -> dict[str, Any]:
    elder = await session.get(Elder, alarm.elder_id) if alarm.elder_id is not None else None
    device = await session.get(Device, alarm.device_id) if alarm.device_id is not None else None
    return {"alarm": await alarm_facts(session, alarm), **await elder_file(session, elder, device),
            "readings": None, "track": await _track(session, elder)}


async def _track(session: AsyncSession, elder: Elder | None) -> list[dict[str, Any]] | None:
    if elder is None:
        return None
    now = utcnow()
    fixes, _ = await locations.track(session, elder.id, since=now - TRACK_PERIOD, until=now, limit=TRACK_FIXES)
    return [locations.position_out(fix).model_dump(mode="json") for fix in fixes] or None
