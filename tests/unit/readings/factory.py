"""Device reading messages, the intake, and an elder's community doctor, for the readings' tests."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from sqlalchemy import func, select

from callcenter.alarms.models import Alarm
from callcenter.db.session import Database
from callcenter.elders.models import Contact, ContactRole
from callcenter.orders.models import WorkOrder
from callcenter.readings.intake import ReadingIntake
from callcenter.readings.models import Reading, ReadingMessage
from tests.unit.alarms.factory import MERGE, SKEW
from tests.unit.supervision_cases.factory import SHANGHAI

RETENTION = dt.timedelta(days=1096)

# One valid example of each type, as docs/device-protocol.md shows them (within the default limits).
EXAMPLES: dict[str, dict[str, Any]] = {
    "blood_pressure": {"systolic_mmhg": 128, "diastolic_mmhg": 82, "pulse_bpm": 70},
    "heart_rate": {"bpm": 72},
    "spo2": {"percent": 97},
    "glucose": {"mmol_l": 5.6, "context": "fasting"},
    "temperature": {"celsius": 36.6, "site": "forehead"},
    "weight": {"kg": 61.5},
    "steps": {"count": 3120, "since": "2026-01-01T00:00:00+08:00"},
}


def intake(db: Database, *, merge: dt.timedelta = MERGE) -> ReadingIntake:
    return ReadingIntake(db, clock_skew=SKEW, retention=RETENTION, merge_window=merge, tz=SHANGHAI)


def reading(reading_type: str = "blood_pressure", values: dict[str, Any] | None = None, *,
            message_id: str | None = None, measured_at: dt.datetime | None = None, **fields: Any) -> dict[str, Any]:
    when = measured_at or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    chosen = dict(EXAMPLES[reading_type]) if values is None else values
    if reading_type == "steps" and values is None:
        chosen["since"] = (when - dt.timedelta(hours=12)).isoformat()
    return {"message_id": message_id or f"r-{secrets.token_hex(4)}", "type": reading_type,
            "measured_at": when.isoformat(), "values": chosen, **fields}


def raw(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


async def add_doctor(db: Database, elder_id: int, name: str = "李医生") -> int:
    async with db.transaction() as session:
        contact = Contact(elder_id=elder_id, role=ContactRole.DOCTOR, name=name, phone="13800000009", priority=1)
        session.add(contact)
        await session.flush()
        return contact.id


async def counts(db: Database) -> dict[str, int]:
    """Rows of what a reading may store: the readings, their message ids, alarms, work orders."""
    async with db.transaction(read_only=True) as session:
        return {model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Reading, ReadingMessage, Alarm, WorkOrder)}
