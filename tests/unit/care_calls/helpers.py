"""Shared pieces of the care-call tests (and the reminders'): elders, a zone whose local time is a chosen hour now,
the service with the outbound dialer over a scripted AMI, and an answered call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select

from callcenter.calls.models import Call, Disposition
from callcenter.care_calls.services import CareCalls
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.models import Elder, LivingSituation
from callcenter.outbound.models import AttemptState, OutboundAttempt
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


async def answer(db: Database, dialer: OutboundDialer, key: str | None) -> None:
    """The elder picks up, presses ``key`` (or says something), and hangs up."""
    await dialer.run_round()
    await dialer.drain()
    async with db.transaction(read_only=True) as session:
        attempt = (await session.scalars(select(OutboundAttempt).where(
            OutboundAttempt.state == AttemptState.ANSWERED))).one()
    if key is not None:
        await dialer.record_key(attempt.id, key)
    async with db.transaction() as session:
        call = await session.get(Call, attempt.call_id)
        assert call is not None
        call.ended_at, call.disposition = utcnow(), Disposition.ANSWERED
    await dialer.run_round()
