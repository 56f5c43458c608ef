"""The alarm card's data (issue 15): what an agent's panel shows when the alarm distributor
(``alarms.distribution``) offers them an alarm — the alarm as the REST API reads it (type, severity, times, where
the device was, its work order), the elder's file, the device, recent calls and open orders, exactly as the
screen-pop shows them (``screenpop.elder_file``).

``readings`` is the elder's latest reading of each type of the last ``READINGS_PERIOD`` (type, values as the device
protocol names them, measurement time, whether it was out of range), the newest type first; None without any.
``track`` is the elder's fixes of the last day as ``GET /api/v1/elders/{id}/positions`` lists them (WGS-84 with
their accuracy, oldest first), None without any; ``fences`` the elder's geofences as ``GET …/geofences`` gives them,
None without any: the card's map draws them with the home and the alarm's position. The distributor audits the card
as a read of the elder's file, naming these parts when the card carries them (``alarms.distribution``).
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
from callcenter.readings.services import list_readings

TRACK_PERIOD = dt.timedelta(hours=24)
TRACK_FIXES = 200  # the newest of the period: enough for a line on a small map, small enough for a pushed card
READINGS_PERIOD = dt.timedelta(days=30)
READINGS_LOOKED_AT = 500  # the newest of the period the latest of each type is picked from


async def build_alarm_card(session: AsyncSession, alarm: Alarm) -> dict[str, Any]:
    elder = await session.get(Elder, alarm.elder_id) if alarm.elder_id is not None else None
    device = await session.get(Device, alarm.device_id) if alarm.device_id is not None else None
    return {"alarm": await alarm_facts(session, alarm), **await elder_file(session, elder, device),
            "readings": await _readings(session, elder), "track": await _track(session, elder),
            "fences": await _fences(session, elder)}


async def _readings(session: AsyncSession, elder: Elder | None) -> list[dict[str, Any]] | None:
    if elder is None:
        return None
    now = utcnow()
    latest: dict[str, dict[str, Any]] = {}
    for reading in await list_readings(session, elder.id, reading_type=None, since=now - READINGS_PERIOD, until=now,
                                       limit=READINGS_LOOKED_AT):
        latest.setdefault(reading.type.value, {
            "type": reading.type.value, "values": reading.values, "measured_at": reading.measured_at.isoformat(),
            "source": reading.source.value, "out_of_range": reading.alarm_id is not None})
    return list(latest.values()) or None


async def _fences(session: AsyncSession, elder: Elder | None) -> list[dict[str, Any]] | None:
    if elder is None:
        return None
    return [(await locations.fence_out(session, fence)).model_dump(mode="json")
            for fence in await locations.fences_of(session, elder.id)] or None


async def _track(session: AsyncSession, elder: Elder | None) -> list[dict[str, Any]] | None:
    if elder is None:
        return None
    now = utcnow()
    fixes, _ = await locations.track(session, elder.id, since=now - TRACK_PERIOD, until=now, limit=TRACK_FIXES)
    return [locations.position_out(fix).model_dump(mode="json") for fix in fixes] or None
