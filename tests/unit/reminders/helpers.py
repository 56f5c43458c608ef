"""Shared pieces of the reminder tests: the service over the real outbound engine (its AMI scripted) and the SMS
service (off: messages rendered, checked and stored), elders, plans and readings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select

from callcenter.audit.services import Actor
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.health_records.models import ChronicPlan
from callcenter.notifications.services import NotificationService
from callcenter.notifications.templates import Templates
from callcenter.outbound.models import OutboundJob
from callcenter.outbound.services import OutboundDialer
from callcenter.readings.models import Reading, ReadingSource, ReadingType
from callcenter.reminders.models import Channel, MedicationReminder, ReminderLog
from callcenter.reminders.services import Reminders
from tests.unit.care_calls.helpers import elder, zone_at
from tests.unit.outbound.ami import ScriptedAmi

ACTOR = Actor(None, "test")
Row = TypeVar("Row", ReminderLog, OutboundJob)
__all__ = ["ACTOR", "elder", "zone_at"]


def service(db: Database, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow,
            **changes: object) -> tuple[Reminders, OutboundDialer, ScriptedAmi, NotificationService]:
    configured = settings.replace(**changes)
    ami = ScriptedAmi()
    dialer = OutboundDialer(db, ami, configured, clock=clock)  # type: ignore[arg-type]
    sms = NotificationService(db, Templates.load(), clock=clock)
    return Reminders(db, configured, dialer, sms, clock=clock), dialer, ami, sms


def local_now(zone: str) -> dt.datetime:
    return utcnow().astimezone(ZoneInfo(zone))


async def medication(reminders: Reminders, db: Database, elder_id: int, times: list[str],
                     channel: Channel = Channel.CALL, **fields: Any) -> MedicationReminder:
    async with db.transaction() as session:
        return await reminders.create(session, elder_id, medication="氨氯地平片", times=times, channel=channel,
                                      actor=ACTOR, **fields)


async def plan(db: Database, elder_id: int, *, started_on: dt.date, next_visit_due: dt.date,
               measurements: list[dict[str, Any]] | None = None, active: bool = True) -> int:
    async with db.transaction() as session:
        row = ChronicPlan(elder_id=elder_id, conditions=["hypertension"], measurements=measurements or [],
                          targets=[], medications=[], visit_interval_days=90, next_visit_due=next_visit_due,
                          started_on=started_on, active=active, version=1, recorded_by="test")
        session.add(row)
        await session.flush()
        return row.id


async def reading(db: Database, elder_id: int, kind: ReadingType, measured_at: dt.datetime) -> None:
    async with db.transaction() as session:
        session.add(Reading(elder_id=elder_id, type=kind, source=ReadingSource.MANUAL, values={"x": 1},
                            measured_at=measured_at, entered_by="test"))


async def logs(db: Database) -> list[ReminderLog]:
    return await rows(db, ReminderLog)


async def jobs(db: Database) -> list[OutboundJob]:
    return await rows(db, OutboundJob)


async def rows(db: Database, model: type[Row]) -> list[Row]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())
