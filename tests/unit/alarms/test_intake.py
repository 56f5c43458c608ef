"""The device intake, without sockets: a valid alarm is stored with its work order before the receipt is returned;
a resent message gets the same receipt; repeats within the window are merged; bad messages are refused naming the
field, counted by reason, and leave nothing behind."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.alarms import services
from callcenter.alarms.intake import (
    MAX_MESSAGE_BYTES,
    AlarmRefused,
    DeviceAlarm,
    ReceiptOutcome,
    RefusalReason,
    parse_message,
    receive,
)
from callcenter.alarms.models import (
    Alarm,
    AlarmMessage,
    AlarmOutcome,
    AlarmSeverity,
    AlarmSource,
    AlarmState,
    AlarmType,
)
from callcenter.alarms.schemas import MAX_EXTRA_BYTES
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor
from callcenter.db.session import Database
from callcenter.devices.models import DeviceStatus
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind
from callcenter.users.models import Role
from tests.unit.alarms.factory import HOME, MERGE, SKEW, household, intake, message, raw
from tests.unit.supervision_cases.factory import SHANGHAI

T0 = dt.datetime(2026, 11, 2, 2, 30, tzinfo=dt.UTC)


async def _counts(db: Database) -> dict[str, int]:
    async with db.transaction(read_only=True) as session:
        return {model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Alarm, AlarmMessage, WorkOrder, WorkOrderEvent, AuditEntry)}


async def test_a_valid_alarm_is_stored_with_its_work_order_before_the_receipt(db: Database) -> None:
    home = await household(db)
    service = intake(db)
    receipt = await service.receive_message(home.device_id, raw(message(
        "fall-0001", position={"lat": 39.91, "lon": 116.36, "accuracy_m": 12.5, "source": "gps"},
        extra={"impact_g": 3.2})), AlarmSource.MQTT)
    assert (receipt.outcome, receipt.duplicate, receipt.message_id) == (ReceiptOutcome.STORED, False, "fall-0001")
    async with db.transaction(read_only=True) as session:  # committed: another transaction reads it
        alarm = await session.get(Alarm, receipt.alarm_id)
        assert alarm is not None and alarm.number == receipt.alarm_number
        assert (alarm.type, alarm.severity, alarm.state, alarm.source, alarm.elder_id, alarm.device_id,
                alarm.device_message_id, alarm.repeat_count) == (
            AlarmType.FALL, AlarmSeverity.CRITICAL, AlarmState.NEW, AlarmSource.MQTT, home.elder_id,
            home.device_id, "fall-0001", 0)
        assert alarm.location == {"latitude": 39.91, "longitude": 116.36, "accuracy_m": 12.5, "source": "gps"}
        assert alarm.payload == {"impact_g": 3.2}
        order = await session.get(WorkOrder, alarm.work_order_id)
        assert order is not None and receipt.work_order_id == order.id
        assert (order.kind, order.priority, order.elder_id, order.device_id, order.title, order.location_text) == (
            WorkOrderKind.EMERGENCY, 1, home.elder_id, home.device_id, "跌倒报警", "西城区月坛北街 8 号")
        assert (order.latitude, order.longitude) == (39.91, 116.36)  # where the device was, not the home
        [created] = (await session.scalars(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order.id)))
        assert created.details == {"alarm": alarm.number, "type": "fall", "severity": "critical", "source": "mqtt"}
        [audit] = (await session.scalars(select(AuditEntry).where(AuditEntry.target_type == "alarm")))
        assert (audit.action, audit.actor_label, audit.target_id) == (
            "alarm.raise", f"device {home.device_id} (mqtt)", str(alarm.id))
    assert (await service.health_checks())["alarm_intake"].facts["stored"] == 1


async def test_without_a_position_the_order_points_at_the_home(db: Database) -> None:
    home = await household(db)
    receipt = await intake(db).receive_message(home.device_id, raw(message(alarm_type="water_leak")),
                                               AlarmSource.MQTT)
    async with db.transaction(read_only=True) as session:
        order = await session.get(WorkOrder, receipt.work_order_id)
        assert order is not None and (order.latitude, order.longitude, order.priority) == (*HOME, 3)


async def test_a_resent_message_gets_the_same_receipt_and_stores_nothing(db: Database) -> None:
    home = await household(db)
    service = intake(db)
    document = raw(message("pendant-77"))
    first = await service.receive_message(home.device_id, document, AlarmSource.MQTT)
    before = await _counts(db)
    again = await service.receive_message(home.device_id, document, AlarmSource.MQTT)
    assert again.duplicate and (again.alarm_id, again.alarm_number, again.work_order_id, again.outcome) == (
        first.alarm_id, first.alarm_number, first.work_order_id, ReceiptOutcome.STORED)
    assert await _counts(db) == before
    # Another device may use the same message id: its own alarm.
    other = await household(db, name="钱玉兰")
    assert not (await service.receive_message(other.device_id, document, AlarmSource.MQTT)).duplicate
    facts = (await service.health_checks())["alarm_intake"].facts
    assert (facts["stored"], facts["duplicates"], facts["refused"]) == (2, 1, 0)


def _alarm(device_id: int, alarm_type: str = "fall", message_id: str | None = None, **fields: Any) -> DeviceAlarm:
    return DeviceAlarm(device_id, AlarmSource.MQTT, parse_message(raw(message(message_id, alarm_type,
                                                                              occurred_at=T0, **fields))))


async def _receive(db: Database, alarm: DeviceAlarm, now: dt.datetime, merge: dt.timedelta = MERGE):
    async with db.transaction() as session:
        return await receive(session, alarm, now=now, merge_window=merge, clock_skew=SKEW, tz=SHANGHAI)


async def test_repeats_within_the_window_are_merged_into_the_open_alarm(db: Database) -> None:
    home = await household(db)
    first = await _receive(db, _alarm(home.device_id, "inactivity"), T0)
    repeat = await _receive(db, _alarm(home.device_id, "inactivity", severity="critical",
                                       position={"lat": 39.92, "lon": 116.37}), T0 + MERGE)
    # The window runs from the last repeat: a device repeating every few minutes stays one alarm.
    again = await _receive(db, _alarm(home.device_id, "inactivity", severity="low"), T0 + 2 * MERGE)
    assert (repeat.outcome, again.outcome) == (ReceiptOutcome.MERGED, ReceiptOutcome.MERGED)
    assert repeat.alarm_id == again.alarm_id == first.alarm_id and repeat.work_order_id == first.work_order_id
    # Another type is another alarm; so is a repeat after the window, or after the alarm was resolved.
    smoke = await _receive(db, _alarm(home.device_id, "smoke"), T0 + 2 * MERGE)
    late = await _receive(db, _alarm(home.device_id, "inactivity"), T0 + 3 * MERGE + dt.timedelta(seconds=1))
    assert smoke.outcome is late.outcome is ReceiptOutcome.STORED
    assert len({first.alarm_id, smoke.alarm_id, late.alarm_id}) == 3
    async with db.transaction() as session:
        merged = await session.get(Alarm, first.alarm_id)
        assert merged is not None
        assert (merged.repeat_count, merged.last_received_at, merged.severity, merged.location) == (
            2, T0 + 2 * MERGE, AlarmSeverity.CRITICAL, {"latitude": 39.92, "longitude": 116.37, "accuracy_m": None,
                                                        "source": None})
        messages = (await session.scalars(select(AlarmMessage).where(AlarmMessage.alarm_id == first.alarm_id)
                                          .order_by(AlarmMessage.id))).all()
        assert [m.merged for m in messages] == [False, True, True]
        assert await session.scalar(select(func.count()).select_from(WorkOrder)) == 3
        # Resolved: the next one is a new alarm even within the window.
        actor = Actor(None, "agent01")
        await services.take(session, late.alarm_id, version=1, actor=actor, now=T0 + 3 * MERGE)
        await services.resolve(session, late.alarm_id, version=2, outcome=AlarmOutcome.FALSE, note=None,
                               actor=actor, role=Role.AGENT, now=T0 + 3 * MERGE)
    after = await _receive(db, _alarm(home.device_id, "inactivity"), T0 + 3 * MERGE + dt.timedelta(seconds=2))
    assert after.outcome is ReceiptOutcome.STORED and after.alarm_id != late.alarm_id
    # A window of 0 merges nothing.
    assert (await _receive(db, _alarm(home.device_id, "inactivity"), T0 + 3 * MERGE + dt.timedelta(seconds=3),
                           merge=dt.timedelta(0))).outcome is ReceiptOutcome.STORED


async def test_a_device_without_an_elder_still_raises_its_alarm(db: Database) -> None:
    home = await household(db, with_elder=False)
    receipt = await intake(db).receive_message(home.device_id, raw(message(alarm_type="smoke")), AlarmSource.MQTT)
    async with db.transaction(read_only=True) as session:
        order = await session.get(WorkOrder, receipt.work_order_id)
        assert order is not None and order.elder_id is None and order.title == "烟雾报警（未关联老人）"


def _too_big_extra() -> dict[str, str]:
    return {"blob": "x" * MAX_EXTRA_BYTES}


# (what is sent, the refusal's reason, the field it names)
BAD: list[tuple[str, Any, RefusalReason, str | None]] = [
    ("not json", b"{fall", RefusalReason.MALFORMED, None),
    ("empty", b"", RefusalReason.MALFORMED, None),
    ("oversized", b" " * (MAX_MESSAGE_BYTES + 1), RefusalReason.OVERSIZED, None),
    ("nested too deep", b"[" * 10_000, RefusalReason.MALFORMED, None),
    ("message id missing", {k: v for k, v in message().items() if k != "message_id"}, RefusalReason.INVALID_FIELD,
     "message_id"),
    ("message id a number", message(message_id=17), RefusalReason.INVALID_FIELD, "message_id"),  # type: ignore[arg-type]
    ("message id with spaces", message("a b"), RefusalReason.INVALID_FIELD, "message_id"),
    ("type unknown", message(alarm_type="earthquake"), RefusalReason.INVALID_FIELD, "type"),
    ("type missing", {k: v for k, v in message().items() if k != "type"}, RefusalReason.INVALID_FIELD, "type"),
    ("time a number", {**message(), "occurred_at": 1_790_000_000}, RefusalReason.INVALID_FIELD, "occurred_at"),
    ("time without offset", {**message(), "occurred_at": "2026-11-02T10:30:00"}, RefusalReason.INVALID_FIELD,
     "occurred_at"),
    ("severity unknown", message(severity="apocalyptic"), RefusalReason.INVALID_FIELD, "severity"),
    ("latitude as text", message(position={"lat": "39.9", "lon": 116.3}), RefusalReason.INVALID_FIELD,
     "position.lat"),
    ("latitude off the globe", message(position={"lat": 91, "lon": 116.3}), RefusalReason.INVALID_FIELD,
     "position.lat"),
    ("longitude missing", message(position={"lat": 39.9}), RefusalReason.INVALID_FIELD, "position.lon"),
    ("unknown field", message(colour="red"), RefusalReason.INVALID_FIELD, "colour"),
    ("extra not an object", message(extra=[1, 2]), RefusalReason.INVALID_FIELD, "extra"),
    ("extra oversized", message(extra=_too_big_extra()), RefusalReason.INVALID_FIELD, "extra"),
    ("text with NUL", message(extra={"zone": "kitchen\x00"}), RefusalReason.INVALID_FIELD, "extra.zone"),
    ("a day ahead", message(occurred_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)),
     RefusalReason.FUTURE_TIME, "occurred_at"),
]


@pytest.mark.parametrize(("sent", "reason", "field"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
async def test_a_bad_message_is_refused_naming_the_field_and_nothing_is_stored(
        db: Database, sent: Any, reason: RefusalReason, field: str | None) -> None:
    home = await household(db)
    service = intake(db)
    before = await _counts(db)
    with pytest.raises(AlarmRefused) as refused:
        await service.receive_message(home.device_id, sent if isinstance(sent, bytes) else raw(sent),
                                      AlarmSource.MQTT)
    assert (refused.value.reason, refused.value.field) == (reason, field), refused.value.message
    assert refused.value.status == 422 and refused.value.code == f"alarm_{reason.value}"
    assert (field or "") in refused.value.message or field is None
    assert await _counts(db) == before
    facts = (await service.health_checks())["alarm_intake"].facts
    assert (facts["refused"], facts[f"refused_{reason.value}"], facts["received"]) == (1, 1, 0)


@pytest.mark.parametrize(("device", "reason"), [("unregistered", RefusalReason.UNKNOWN_DEVICE),
                                                ("out of range", RefusalReason.UNKNOWN_DEVICE),
                                                ("retired", RefusalReason.DEVICE_RETIRED)])
async def test_an_unknown_or_retired_device_is_refused(db: Database, device: str, reason: RefusalReason) -> None:
    retired = await household(db, status=DeviceStatus.RETIRED)
    device_id = {"unregistered": retired.device_id + 1000, "out of range": 2**40, "retired": retired.device_id}[device]
    service = intake(db)
    before = await _counts(db)
    with pytest.raises(AlarmRefused) as refused:
        await service.receive_message(device_id, raw(message()), AlarmSource.MQTT)
    assert (refused.value.reason, refused.value.field) == (reason, "device_id")
    assert str(device_id) in refused.value.message
    assert await _counts(db) == before
    assert (await service.health_checks())["alarm_intake"].facts[f"refused_{reason.value}"] == 1


async def test_a_failure_after_the_alarm_was_written_leaves_nothing_behind(db: Database,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm row is flushed before its work order is raised: a failure there must take the alarm with it,
    and the device, unacknowledged, sends it again."""
    home = await household(db)
    service = intake(db)
    before = await _counts(db)

    async def failing_order(*_args: object, **_kwargs: object) -> WorkOrder:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "raise_order", failing_order)
    document = raw(message("retry-me"))
    with pytest.raises(RuntimeError):
        await service.receive_message(home.device_id, document, AlarmSource.MQTT)
    assert await _counts(db) == before
    monkeypatch.undo()
    receipt = await service.receive_message(home.device_id, document, AlarmSource.MQTT)
    assert receipt.outcome is ReceiptOutcome.STORED and not receipt.duplicate


async def test_only_device_transports_use_the_intake(db: Database) -> None:
    home = await household(db)
    alarm = DeviceAlarm(home.device_id, AlarmSource.MANUAL, parse_message(raw(message())))
    with pytest.raises(ValueError, match="not a device transport"):
        await _receive(db, alarm, T0)
