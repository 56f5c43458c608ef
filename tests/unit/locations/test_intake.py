"""The position intake without sockets: a fix is stored sealed (WGS-84, time, accuracy, source) before the receipt;
a resent message gets the same receipt and stores nothing; every bad message is refused with its reason and field,
counted, and leaves nothing behind."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from callcenter.alarms.intake import RefusalReason
from callcenter.alarms.models import Alarm, AlarmSource
from callcenter.audit.models import AuditEntry
from callcenter.db.session import Database
from callcenter.devices.models import DeviceStatus
from callcenter.locations.intake import MAX_MESSAGE_BYTES, PositionRefused, parse_message
from callcenter.locations.models import GeofenceState, Position, PositionSource
from tests.unit.alarms.factory import HOME, SKEW, household
from tests.unit.locations.factory import east_of, fix, home_fence, intake, raw

LATITUDE, LONGITUDE = 31.230416, 121.473701


async def _counts(db: Database) -> dict[str, int]:
    async with db.transaction(read_only=True) as session:
        return {model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Position, GeofenceState, Alarm, AuditEntry)}


async def test_a_fix_is_stored_sealed_before_its_receipt(db: Database) -> None:
    home = await household(db)
    service = intake(db)
    measured = dt.datetime(2026, 3, 1, 15, 20, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    receipt = await service.receive_message(home.device_id, raw(fix(
        (LATITUDE, LONGITUDE), message_id="w-8621-pos-004211", accuracy_m=12, speed_mps=0.9, altitude_m=4.5,
        measured_at=measured)), AlarmSource.MQTT)
    assert (receipt.message_id, receipt.duplicate, receipt.alarm_ids) == ("w-8621-pos-004211", False, ())
    async with db.transaction(read_only=True) as session:
        position = await session.get(Position, receipt.position_id)
        assert position is not None
        assert (position.device_id, position.elder_id, position.measured_at, position.accuracy_m, position.source,
                position.transport) == (home.device_id, home.elder_id, measured, 12, PositionSource.GPS, "mqtt")
        assert position.fix == {"lat": LATITUDE, "lon": LONGITUDE, "altitude_m": 4.5, "speed_mps": 0.9}
        assert position.received_at > measured
    async with db.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM positions"))).all()
    dump = "\n".join(str(row) for row in rows)
    assert "cc1:" in dump
    for secret in (str(LATITUDE), str(LONGITUDE), "31.23", "121.47", "4.5"):
        assert secret not in dump, secret
    facts = (await service.health_checks())["position_intake"].facts
    assert (facts["stored"], facts["duplicates"], facts["refused"]) == (1, 0, 0)


async def test_a_resent_fix_gets_the_same_receipt_and_stores_nothing(db: Database) -> None:
    home = await household(db)
    service = intake(db)
    document = raw(fix(HOME, message_id="pos-77"))
    first = await service.receive_message(home.device_id, document, AlarmSource.MQTT)
    before = await _counts(db)
    again = await service.receive_message(home.device_id, document, AlarmSource.MQTT)
    assert again.duplicate and again.position_id == first.position_id
    assert await _counts(db) == before
    other = await household(db, name="钱玉兰")  # another device may use the same id
    assert not (await service.receive_message(other.device_id, document, AlarmSource.MQTT)).duplicate
    facts = (await service.health_checks())["position_intake"].facts
    assert (facts["stored"], facts["duplicates"]) == (2, 1)


def _without(document: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != name}


async def test_every_bad_message_is_refused_naming_the_field_and_nothing_is_half_stored(db: Database) -> None:
    home = await household(db)
    retired = await household(db, name="孙桂芬", status=DeviceStatus.RETIRED)
    await home_fence(db, home.elder_id, hours=None)  # a crossing would raise an alarm: none may come of these
    service = intake(db)
    good = fix(east_of(HOME, 2000))
    future = (dt.datetime.now(dt.UTC) + SKEW + dt.timedelta(minutes=5)).isoformat()
    cases: list[tuple[int, bytes, RefusalReason, str | None]] = [
        (home.device_id, b"{not json", RefusalReason.MALFORMED, None),
        (home.device_id, b"[1, 2]", RefusalReason.INVALID_FIELD, None),
        (home.device_id, b"x" * (MAX_MESSAGE_BYTES + 1), RefusalReason.OVERSIZED, None),
        (home.device_id, raw(_without(good, "accuracy_m")), RefusalReason.INVALID_FIELD, "accuracy_m"),
        (home.device_id, raw(_without(good, "message_id")), RefusalReason.INVALID_FIELD, "message_id"),
        (home.device_id, raw({**good, "lat": 91.0}), RefusalReason.INVALID_FIELD, "lat"),
        (home.device_id, raw({**good, "lon": "116.36"}), RefusalReason.INVALID_FIELD, "lon"),  # strict
        (home.device_id, raw({**good, "accuracy_m": -1}), RefusalReason.INVALID_FIELD, "accuracy_m"),
        (home.device_id, raw({**good, "source": "gnss"}), RefusalReason.INVALID_FIELD, "source"),
        (home.device_id, raw({**good, "heading_deg": 360}), RefusalReason.INVALID_FIELD, "heading_deg"),
        (home.device_id, raw({**good, "satellites": 7}), RefusalReason.INVALID_FIELD, "satellites"),
        (home.device_id, raw({**good, "message_id": "has space"}), RefusalReason.INVALID_FIELD, "message_id"),
        (home.device_id, raw({**good, "measured_at": "2026-03-01T15:20:00"}), RefusalReason.INVALID_FIELD,
         "measured_at"),  # no offset
        (home.device_id, raw({**good, "measured_at": future}), RefusalReason.FUTURE_TIME, "measured_at"),
        (999_999, raw(good), RefusalReason.UNKNOWN_DEVICE, "device_id"),
        (retired.device_id, raw(good), RefusalReason.DEVICE_RETIRED, "device_id"),
    ]
    before = await _counts(db)
    for device_id, document, reason, field in cases:
        with pytest.raises(PositionRefused) as refused:
            await service.receive_message(device_id, document, AlarmSource.MQTT)
        assert (refused.value.reason, refused.value.field) == (reason, field), (document[:80], refused.value)
    assert await _counts(db) == before
    facts = (await service.health_checks())["position_intake"].facts
    assert facts["refused"] == len(cases) and facts["stored"] == 0
    assert facts["refused_invalid_field"] == 11 and facts["refused_unknown_device"] == 1
    # The same fix from the elder's device is taken, and its crossing is an alarm: the refusals were the messages'.
    assert len((await service.receive_message(home.device_id, raw(good), AlarmSource.MQTT)).alarm_ids) == 1


async def test_a_device_without_an_elder_has_its_fixes_stored_and_judged_against_nothing(db: Database) -> None:
    spare = await household(db, with_elder=False)
    receipt = await intake(db).receive_message(spare.device_id, raw(fix(HOME)), AlarmSource.MQTT)
    async with db.transaction(read_only=True) as session:
        position = await session.get(Position, receipt.position_id)
        assert position is not None and position.elder_id is None and receipt.alarm_ids == ()


def test_the_protocols_position_examples_are_valid() -> None:
    """docs/device-protocol.md's examples are what devices copy: each must be taken as it is written."""
    document = (Path(__file__).parents[3] / "docs" / "device-protocol.md").read_text("utf-8")
    section = document.split("### Position", 1)[1].split("### Reading", 1)[0]
    examples = re.findall(r"```json\n(.*?)```", section, re.S)
    assert len(examples) == 3
    for example in examples:
        parse_message(example.encode())
