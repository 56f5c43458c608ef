"""The reading intake: every type taken with its values sealed, every refusal named with nothing stored, a repeat
stored once, and the rules — an out-of-range value raises a vital-sign alarm of the bound's severity (an elder's
own limits before the defaults), and a sustained trend raises exactly one follow-up order for the community
doctor."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select, text

from callcenter.alarms.models import Alarm, AlarmSeverity, AlarmSource, AlarmType
from callcenter.audit.services import Actor
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import DeviceStatus
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind
from callcenter.readings import services
from callcenter.readings.intake import ReadingRefused, RefusalReason
from callcenter.readings.models import Reading, ReadingSource, ReadingType
from tests.unit.alarms.factory import household
from tests.unit.readings.factory import EXAMPLES, add_doctor, counts, intake, raw, reading

EMPTY = {"Reading": 0, "ReadingMessage": 0, "Alarm": 0, "WorkOrder": 0}


async def test_every_type_is_stored_with_its_values_sealed(db: Database) -> None:
    home = await household(db)
    taking = intake(db)
    for reading_type in EXAMPLES:
        document = reading(reading_type)
        receipt = await taking.receive_message(home.device_id, raw(document), ReadingSource.MQTT)
        assert not receipt.duplicate and receipt.alarm_id is None
        async with db.transaction(read_only=True) as session:
            stored = await session.scalar(select(Reading).where(Reading.id == receipt.reading_id))
            assert stored is not None
            assert (stored.type, stored.elder_id, stored.device_id, stored.source) == (
                ReadingType(reading_type), home.elder_id, home.device_id, ReadingSource.MQTT)
            expected = dict(document["values"])
            if reading_type == "steps":  # as stored: the time in UTC
                expected["since"] = dt.datetime.fromisoformat(expected["since"]).astimezone(dt.UTC).isoformat() \
                    .replace("+00:00", "Z")
            assert stored.values == expected
            assert stored.measured_at == dt.datetime.fromisoformat(document["measured_at"])
            sealed = (await session.execute(text("SELECT \"values\" FROM readings WHERE id = :id"),
                                            {"id": receipt.reading_id})).scalar_one()
            plain = json.dumps(stored.values, ensure_ascii=False, separators=(",", ":"))
            # Sealed: the key's prefix and a ciphertext (a short number may occur in base64 by chance, the
            # plaintext cannot).
            assert sealed.startswith("cc1:") and plain not in sealed
    assert (await counts(db))["Reading"] == len(EXAMPLES)
    assert taking.taken["stored"] == len(EXAMPLES)
    check = (await taking.health_checks())["reading_intake"]
    assert check.ok and check.facts["stored"] == len(EXAMPLES) and check.facts["refused"] == 0


def _with(reading_type: str, **values: Any) -> dict[str, Any]:
    document = reading(reading_type)
    document["values"] = {**document["values"], **values}
    return document


def _without(reading_type: str, name: str) -> dict[str, Any]:
    document = reading(reading_type)
    document["values"] = {key: value for key, value in document["values"].items() if key != name}
    return document


NOW = dt.datetime.now(dt.UTC)
INVALID: list[tuple[str, dict[str, Any] | bytes, str]] = [
    ("no message id", {key: value for key, value in reading().items() if key != "message_id"}, "message_id"),
    ("a message id with a space", reading(message_id="a b"), "message_id"),
    ("an unknown type", {**reading(), "type": "mood"}, "type"),
    ("a time without an offset", {**reading(), "measured_at": "2026-03-01T07:30:00"}, "measured_at"),
    ("no values", {key: value for key, value in reading().items() if key != "values"}, "values"),
    ("values not an object", {**reading(), "values": [128, 82]}, "values"),
    ("an unknown top-level field", {**reading(), "mood": "fine"}, "mood"),
    ("an extra over 4 KiB", {**reading(), "extra": {"blob": "x" * 5000}}, "extra"),
    ("blood pressure: no systolic", _without("blood_pressure", "systolic_mmhg"), "values.systolic_mmhg"),
    ("blood pressure: systolic in quotes", _with("blood_pressure", systolic_mmhg="182"), "values.systolic_mmhg"),
    ("blood pressure: systolic not whole", _with("blood_pressure", systolic_mmhg=182.5), "values.systolic_mmhg"),
    ("blood pressure: diastolic out of range", _with("blood_pressure", diastolic_mmhg=250), "values.diastolic_mmhg"),
    ("blood pressure: diastolic above systolic", _with("blood_pressure", systolic_mmhg=120, diastolic_mmhg=130),
     "values.diastolic_mmhg"),
    ("blood pressure: pulse out of range", _with("blood_pressure", pulse_bpm=0), "values.pulse_bpm"),
    ("blood pressure: an unknown value", _with("blood_pressure", mood=1), "values.mood"),
    ("heart rate: no bpm", _without("heart_rate", "bpm"), "values.bpm"),
    ("heart rate: bpm out of range", _with("heart_rate", bpm=400), "values.bpm"),
    ("spo2: over 100", _with("spo2", percent=101), "values.percent"),
    ("spo2: a boolean", _with("spo2", percent=True), "values.percent"),
    ("glucose: no context", _without("glucose", "context"), "values.context"),
    ("glucose: an unknown context", _with("glucose", context="lunch"), "values.context"),
    ("glucose: out of range", _with("glucose", mmol_l=80), "values.mmol_l"),
    ("temperature: out of range", _with("temperature", celsius=50), "values.celsius"),
    ("temperature: an unknown site", _with("temperature", site="toe"), "values.site"),
    ("weight: in quotes", _with("weight", kg="61.5"), "values.kg"),
    ("weight: out of range", _with("weight", kg=2), "values.kg"),
    ("steps: negative", _with("steps", count=-1), "values.count"),
    ("steps: since without an offset", _with("steps", since="2026-03-01T00:00:00"), "values.since"),
    ("steps: since after the measurement", _with("steps", since=(NOW + dt.timedelta(hours=1)).isoformat()),
     "values.since"),
]


@pytest.mark.parametrize(("document", "field"), [(document, field) for _, document, field in INVALID],
                         ids=[name for name, _, _ in INVALID])
async def test_an_invalid_field_is_refused_by_name_and_nothing_is_stored(db: Database, document: dict[str, Any],
                                                                          field: str) -> None:
    home = await household(db)
    taking = intake(db)
    with pytest.raises(ReadingRefused) as refused:
        await taking.receive_message(home.device_id, raw(document), ReadingSource.MQTT)
    assert (refused.value.reason, refused.value.field) == (RefusalReason.INVALID_FIELD, field)
    assert await counts(db) == EMPTY
    assert taking.refused == {RefusalReason.INVALID_FIELD: 1}


async def test_every_other_refusal_is_named_and_nothing_is_stored(db: Database) -> None:
    home = await household(db)
    retired = await household(db, status=DeviceStatus.RETIRED, name="钱老人")
    taking = intake(db)
    over_the_top = _with("blood_pressure", systolic_mmhg=250, diastolic_mmhg=130)  # would raise a critical alarm
    cases: list[tuple[int, bytes, RefusalReason, str | None]] = [
        (home.device_id, b"{not json", RefusalReason.MALFORMED, None),
        (home.device_id, b"[1, 2]", RefusalReason.MALFORMED, None),
        (home.device_id, b"x" * (16 * 1024 + 1), RefusalReason.OVERSIZED, None),
        (home.device_id, raw({**over_the_top, "measured_at": (NOW + dt.timedelta(hours=1)).isoformat()}),
         RefusalReason.FUTURE_TIME, "measured_at"),
        (home.device_id, raw({**over_the_top, "measured_at": (NOW - dt.timedelta(days=1200)).isoformat()}),
         RefusalReason.TOO_OLD, "measured_at"),
        (987_654, raw(over_the_top), RefusalReason.UNKNOWN_DEVICE, "device_id"),
        (retired.device_id, raw(over_the_top), RefusalReason.DEVICE_RETIRED, "device_id"),
    ]
    for device_id, payload, reason, field in cases:
        with pytest.raises(ReadingRefused) as refused:
            await taking.receive_message(device_id, payload, ReadingSource.MQTT)
        assert (refused.value.reason, refused.value.field) == (reason, field), payload[:60]
    assert await counts(db) == EMPTY
    facts = (await taking.health_checks())["reading_intake"].facts
    assert facts["refused"] == len(cases) and facts["refused_device_retired"] == 1 and facts["stored"] == 0


async def test_a_repeated_message_is_stored_once_and_answered_alike(db: Database) -> None:
    home = await household(db)
    other = await household(db, name="孙桂芬")
    taking = intake(db)
    high = reading("blood_pressure", {"systolic_mmhg": 186, "diastolic_mmhg": 100}, message_id="bp-1")
    first = await taking.receive_message(home.device_id, raw(high), ReadingSource.MQTT)
    again = await taking.receive_message(home.device_id, raw(high), ReadingSource.MQTT)
    assert again.duplicate and (again.reading_id, again.alarm_id) == (first.reading_id, first.alarm_id)
    assert first.alarm_id is not None
    assert await counts(db) == {"Reading": 1, "ReadingMessage": 1, "Alarm": 1, "WorkOrder": 1}
    # Another device's message of the same id is its own.
    theirs = await taking.receive_message(other.device_id, raw(high), ReadingSource.MQTT)
    assert not theirs.duplicate and theirs.reading_id != first.reading_id
    assert (taking.taken["stored"], taking.taken["duplicate"]) == (2, 1)


@pytest.mark.parametrize(("reading_type", "values", "severity"), [
    ("blood_pressure", {"systolic_mmhg": 182, "diastolic_mmhg": 100}, AlarmSeverity.HIGH),
    ("blood_pressure", {"systolic_mmhg": 170, "diastolic_mmhg": 112}, AlarmSeverity.HIGH),
    ("blood_pressure", {"systolic_mmhg": 224, "diastolic_mmhg": 100}, AlarmSeverity.CRITICAL),
    ("blood_pressure", {"systolic_mmhg": 190, "diastolic_mmhg": 121}, AlarmSeverity.CRITICAL),
    ("blood_pressure", {"systolic_mmhg": 86, "diastolic_mmhg": 50}, AlarmSeverity.CRITICAL),
    ("blood_pressure", {"systolic_mmhg": 178, "diastolic_mmhg": 108}, None),
    ("heart_rate", {"bpm": 38}, AlarmSeverity.CRITICAL),
    ("heart_rate", {"bpm": 118}, AlarmSeverity.HIGH),
    ("heart_rate", {"bpm": 135}, AlarmSeverity.CRITICAL),
    ("heart_rate", {"bpm": 95}, None),
    ("spo2", {"percent": 88}, AlarmSeverity.CRITICAL),
    ("spo2", {"percent": 92}, AlarmSeverity.HIGH),
    ("spo2", {"percent": 95}, None),
    ("glucose", {"mmol_l": 2.6, "context": "random"}, AlarmSeverity.CRITICAL),
    ("glucose", {"mmol_l": 3.5, "context": "fasting"}, AlarmSeverity.HIGH),
    ("glucose", {"mmol_l": 18.2, "context": "after_meal"}, AlarmSeverity.HIGH),
    ("temperature", {"celsius": 39.4}, AlarmSeverity.HIGH),
    ("temperature", {"celsius": 34.8}, AlarmSeverity.CRITICAL),
    ("temperature", {"celsius": 38.4}, None),
    ("weight", {"kg": 120.0}, None),
])
async def test_a_value_out_of_range_raises_a_vital_sign_alarm_of_its_severity(
        db: Database, reading_type: str, values: dict[str, Any], severity: AlarmSeverity | None) -> None:
    home = await household(db)
    receipt = await intake(db).receive_message(home.device_id, raw(reading(reading_type, values)),
                                               ReadingSource.MQTT)
    async with db.transaction(read_only=True) as session:
        alarms = list(await session.scalars(select(Alarm)))
        if severity is None:
            assert alarms == [] and receipt.alarm_id is None
            return
        [alarm] = alarms
        assert (alarm.id, alarm.type, alarm.severity, alarm.source, alarm.elder_id, alarm.device_id) == (
            receipt.alarm_id, AlarmType.VITAL_SIGN, severity, AlarmSource.MQTT, home.elder_id, home.device_id)
        assert alarm.work_order_id is not None  # its emergency order, as every alarm's
        assert alarm.payload["reading"]["id"] == receipt.reading_id
        assert alarm.payload["reading"]["type"] == reading_type
        assert alarm.payload["reading"]["values"] == values
        worst = alarm.payload["breaches"][0]
        assert worst["severity"] == severity.value and worst["source"] == "default" and worst["measure"] in values
        assert (await session.get(Reading, (receipt.reading_id, alarm.occurred_at))).alarm_id == alarm.id


async def test_repeated_readings_out_of_range_are_merged_into_one_alarm(db: Database) -> None:
    home = await household(db)
    taking = intake(db)
    first = await taking.receive_message(home.device_id, raw(reading(
        "blood_pressure", {"systolic_mmhg": 184, "diastolic_mmhg": 100})), ReadingSource.MQTT)
    second = await taking.receive_message(home.device_id, raw(reading(
        "blood_pressure", {"systolic_mmhg": 226, "diastolic_mmhg": 100})), ReadingSource.MQTT)
    assert first.alarm_id == second.alarm_id is not None
    async with db.transaction(read_only=True) as session:
        alarm = await session.get(Alarm, first.alarm_id)
        assert alarm is not None and (alarm.repeat_count, alarm.severity) == (1, AlarmSeverity.CRITICAL)
    assert (await counts(db))["Alarm"] == 1 and taking.taken["alarms"] == 2


async def _set(db: Database, elder_id: int, doctor_id: int, reading_type: ReadingType,
               measures: dict[str, dict[str, float | None]]) -> None:
    async with db.transaction() as session:
        elder = await session.get(Elder, elder_id)
        assert elder is not None
        full = {measure: {name: limits.get(name) for name in ("critical_low", "high_low", "high_high",
                                                               "critical_high", "target_high")}
                for measure, limits in measures.items()}
        await services.set_thresholds(session, elder, reading_type, full, doctor_contact_id=doctor_id, note="遵医嘱",
                                      actor=Actor(None, "supervisor01"), now=utcnow())


async def test_an_elders_own_limits_beat_the_default(db: Database) -> None:
    strict = await household(db)
    tolerant = await household(db, name="孙桂芬")
    for home in (strict, tolerant):
        doctor = await add_doctor(db, home.elder_id)
        if home is strict:  # after a stroke: 160 is already too high
            await _set(db, home.elder_id, doctor, ReadingType.BLOOD_PRESSURE,
                       {"systolic_mmhg": {"high_high": 160, "critical_high": 200, "target_high": 130}})
        else:  # COPD: 88-92 % is this elder's target range (BTS guideline), below 85 is critical
            await _set(db, home.elder_id, doctor, ReadingType.SPO2, {"percent": {"critical_low": 84}})
    taking = intake(db)
    mid = await taking.receive_message(strict.device_id, raw(reading(
        "blood_pressure", {"systolic_mmhg": 165, "diastolic_mmhg": 90})), ReadingSource.MQTT)
    over = await taking.receive_message(strict.device_id, raw(reading(
        "blood_pressure", {"systolic_mmhg": 205, "diastolic_mmhg": 90})), ReadingSource.MQTT)
    low = await taking.receive_message(tolerant.device_id, raw(reading("spo2", {"percent": 88})), ReadingSource.MQTT)
    very_low = await taking.receive_message(tolerant.device_id, raw(reading("spo2", {"percent": 83})),
                                            ReadingSource.MQTT)
    assert low.alarm_id is None  # the default would be critical
    async with db.transaction(read_only=True) as session:
        strict_alarm = await session.get(Alarm, mid.alarm_id)
        assert strict_alarm is not None and over.alarm_id == mid.alarm_id
        assert strict_alarm.severity is AlarmSeverity.CRITICAL  # merged: 165 high (theirs), then 205 critical
        breach = strict_alarm.payload["breaches"][0]
        assert (breach["source"], breach["bound"], breach["limit"]) == ("elder", "high_high", 160)
        copd = await session.get(Alarm, very_low.alarm_id)
        assert copd is not None and copd.severity is AlarmSeverity.CRITICAL
        assert copd.payload["breaches"][0]["source"] == "elder"


async def test_a_sustained_trend_raises_exactly_one_follow_up_for_the_community_doctor(db: Database) -> None:
    home = await household(db)
    doctor = await add_doctor(db, home.elder_id, name="王建国")
    taking = intake(db)
    now = dt.datetime.now(dt.UTC)
    above = {"systolic_mmhg": 152, "diastolic_mmhg": 86}  # above the 140 target, no alarm

    async def send(days_ago: float, values: dict[str, Any]) -> Any:
        return await taking.receive_message(home.device_id, raw(reading(
            "blood_pressure", values, measured_at=now - dt.timedelta(days=days_ago))), ReadingSource.MQTT)

    # Two above target, and one older than the week: no trend yet.
    assert (await send(12, above)).follow_up_order_id is None
    assert (await send(6, above)).follow_up_order_id is None
    assert (await send(5, {"systolic_mmhg": 132, "diastolic_mmhg": 80})).follow_up_order_id is None
    assert (await send(4, above)).follow_up_order_id is None
    third = await send(3, above)
    assert third.follow_up_order_id is not None and third.alarm_id is None
    for days_ago in (2, 1, 0.5):  # the same trend: no second order
        assert (await send(days_ago, above)).follow_up_order_id is None
    async with db.transaction(read_only=True) as session:
        [order] = list(await session.scalars(select(WorkOrder)))
        assert (order.id, order.kind, order.elder_id, order.service) == (
            third.follow_up_order_id, WorkOrderKind.SERVICE_REQUEST, home.elder_id, "home_medical")
        assert "血压" in order.title and "王建国" in (order.description or "")
        events = [(event.action, event.details) for event in await session.scalars(
            select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order.id))]
    assert [action for action, _ in events] == ["created"]
    assert events[0][1]["doctor_contact_id"] == doctor and events[0][1]["readings_above_target"] == 3
    assert "152" not in str(events)  # the trail names no value
    # Back within target ends the trend; a new one counts from there: three more above raise a second order.
    assert (await send(0.4, {"systolic_mmhg": 126, "diastolic_mmhg": 78})).follow_up_order_id is None
    assert (await send(0.3, above)).follow_up_order_id is None
    assert (await send(0.2, above)).follow_up_order_id is None
    assert (await send(0.1, above)).follow_up_order_id is not None
    assert (await send(0.05, above)).follow_up_order_id is None
    assert (await counts(db))["WorkOrder"] == 2


async def test_readings_without_a_target_make_no_trend(db: Database) -> None:
    home = await household(db)
    taking = intake(db)
    for _ in range(4):
        await taking.receive_message(home.device_id, raw(reading("weight", {"kg": 90.0})), ReadingSource.MQTT)
    assert (await counts(db))["WorkOrder"] == 0


async def test_a_reading_that_raises_an_alarm_wakes_the_distributor_once(db: Database) -> None:
    """The alarm distributor listens (``on_alarm``): told once the out-of-range reading is committed, not for a
    normal reading nor for the device's resend of the same message."""
    home = await household(db)
    readings = intake(db)
    woken: list[int] = []
    readings.on_alarm(lambda: woken.append(1))
    await readings.receive_message(home.device_id, raw(reading(message_id="ok-1")), ReadingSource.MQTT)
    assert woken == []
    crisis = raw(reading(values={"systolic_mmhg": 190, "diastolic_mmhg": 112}, message_id="bp-hi-1"))
    receipt = await readings.receive_message(home.device_id, crisis, ReadingSource.MQTT)
    assert receipt.alarm_id is not None and woken == [1]
    await readings.receive_message(home.device_id, crisis, ReadingSource.MQTT)  # the resend: stored once, no wake
    assert woken == [1]
