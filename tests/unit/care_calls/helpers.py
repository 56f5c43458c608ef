"""Shared pieces of the care-call tests: elders, a zone whose local time is a chosen hour now, and the service with
the outbound dialer over a scripted AMI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from callcenter.care_calls.services import CareCalls
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.models import Elder, LivingSituation
from callcenter.outbound.services import OutboundDialer
from tests.unit.outbound.test_dialer import ScriptedAmi


def zone_at(hour: int) -> str:
    """A fixed-offset IANA zone (Etc/GMT±N) in which the local time now is ``hour``:MM, so a test's windows and
    quiet hours are where it wants them at whatever hour it runs."""
    offset = hour - utcnow().hour
    if offset < -12:
        offset += 24
    elif offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}"


async def elder(db: Database, *, phone: str | None = "13800138000", name: str = "王阿姨",
                living: LivingSituation | None = LivingSituation.ALONE, birth_date: dt.date | None = None) -> int:
    async with db.transaction() as session:
        row = Elder(full_name=name, phone=phone, living_situation=living, birth_date=birth_date)
        session.add(row)
        await session.flush()
        return row.id


def service(db: Database, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow,
            ami: ScriptedAmi | None = None, **changes: object) -> tuple[CareCalls, OutboundDialer, ScriptedAmi]:
    configured = settings.replace(**changes)
    ami = ami or ScriptedAmi()
    dialer = OutboundDialer(db, ami, configured, clock=clock)  # type: ignore[arg-type]
    return CareCalls(db, configured, dialer, clock=clock), dialer, ami
