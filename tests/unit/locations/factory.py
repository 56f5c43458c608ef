"""Fixes and fences for the locations' tests: an elder at home in Beijing (the alarms' household), a circle fence
around the home, and points at known distances from it."""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.db.session import Database
from callcenter.locations.geometry import EARTH_RADIUS_M
from callcenter.locations.intake import PositionIntake
from callcenter.locations.models import FenceKind, FenceShape, Geofence
from tests.unit.alarms.factory import HOME, MERGE, SKEW
from tests.unit.supervision_cases.factory import SHANGHAI

# 22:00 in Beijing (UTC+8): outside "may be out 07:00–20:00".
NIGHT = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)
# 10:00 in Beijing: inside those hours.
MORNING = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)
DAY_HOURS = (7 * 60, 20 * 60)


def intake(db: Database, *, merge: dt.timedelta = MERGE, tz: ZoneInfo = SHANGHAI) -> PositionIntake:
    return PositionIntake(db, clock_skew=SKEW, merge_window=merge, tz=tz)


def east_of(origin: tuple[float, float], metres: float) -> tuple[float, float]:
    """The point ``metres`` due east of ``origin`` (lat, lon): at Beijing's latitude a metre is more longitude than
    it would be at the equator."""
    lat, lon = origin
    return lat, lon + math.degrees(metres / (EARTH_RADIUS_M * math.cos(math.radians(lat))))


def north_of(origin: tuple[float, float], metres: float) -> tuple[float, float]:
    lat, lon = origin
    return lat + math.degrees(metres / EARTH_RADIUS_M), lon


def fix(where: tuple[float, float], *, accuracy_m: float = 10, source: str = "gps", message_id: str | None = None,
        measured_at: dt.datetime | None = None, **fields: Any) -> dict[str, Any]:
    return {"message_id": message_id or f"pos-{secrets.token_hex(4)}",
            "measured_at": (measured_at or dt.datetime.now(dt.UTC)).isoformat(), "lat": where[0], "lon": where[1],
            "accuracy_m": accuracy_m, "source": source, **fields}


def raw(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


async def home_fence(db: Database, elder_id: int, *, radius_m: float = 500, kind: FenceKind = FenceKind.STAY_INSIDE,
                     hours: tuple[int, int] | None = DAY_HOURS, center: tuple[float, float] = HOME,
                     name: str = "家附近") -> int:
    async with db.transaction() as session:
        fence = Geofence(elder_id=elder_id, name=name, kind=kind, shape=FenceShape.CIRCLE,
                         area={"center": {"lat": center[0], "lon": center[1]}, "radius_m": radius_m},
                         allowed_from=hours[0] if hours else None, allowed_until=hours[1] if hours else None,
                         active=True)
        session.add(fence)
        await session.flush()
        return fence.id
