"""An elder with a device, and device messages, for the alarms' tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from typing import Any

from callcenter.alarms.intake import AlarmIntake
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind, DeviceStatus
from callcenter.elders.models import Elder
from tests.unit.supervision_cases.factory import SHANGHAI

HOME = (39.913818, 116.363625)  # the elder's home: its digits must never appear in the database in plain
MERGE = dt.timedelta(seconds=300)
SKEW = dt.timedelta(seconds=300)


@dataclasses.dataclass(frozen=True, slots=True)
class Household:
    elder_id: int
    device_id: int


async def household(db: Database, *, status: DeviceStatus = DeviceStatus.ACTIVE, with_elder: bool = True,
                    name: str = "赵淑珍") -> Household:
    async with db.transaction() as session:
        elder = Elder(full_name=name, address="西城区月坛北街 8 号", latitude=HOME[0], longitude=HOME[1])
        session.add(elder)
        await session.flush()
        tag = secrets.token_hex(3)
        device = Device(elder_id=elder.id if with_elder else None, kind=DeviceKind.WATCH, sip_username=f"w-{tag}",
                        sip_ha1="0" * 32, serial_number=f"SN-{tag}", status=status)
        session.add(device)
        await session.flush()
        return Household(elder.id, device.id)


def intake(db: Database, *, merge: dt.timedelta = MERGE) -> AlarmIntake:
    return AlarmIntake(db, merge_window=merge, clock_skew=SKEW, tz=SHANGHAI)


def message(message_id: str | None = None, alarm_type: str = "fall", *, occurred_at: dt.datetime | None = None,
            **fields: Any) -> dict[str, Any]:
    return {"message_id": message_id or f"m-{secrets.token_hex(4)}", "type": alarm_type,
            "occurred_at": (occurred_at or dt.datetime.now(dt.UTC)).isoformat(), **fields}


def raw(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()
