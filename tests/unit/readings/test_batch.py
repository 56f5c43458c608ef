"""The intake's batches (what the MQTT transport hands over in one go): one transaction, one outcome per message in
order, and the same result as taking the messages one at a time — refusals named, repeats (earlier or within the
batch) answered alike and stored once, an out-of-range value's alarm, a trend's single follow-up order — while a
poison message costs only itself and a database failure takes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.alarms.models import Alarm
from callcenter.db.session import Database
from callcenter.devices.models import DeviceStatus
from callcenter.readings import intake as intake_module
from callcenter.readings.intake import ReadingRefused, Receipt, RefusalReason
from callcenter.readings.models import Reading, ReadingMessage, ReadingSource
from tests.unit.alarms.factory import household
from tests.unit.readings.factory import add_doctor, counts, intake, raw, reading

ABOVE = {"systolic_mmhg": 152, "diastolic_mmhg": 86}  # above the 140 target, no alarm
WITHIN = {"systolic_mmhg": 126, "diastolic_mmhg": 78}
CRISIS = {"systolic_mmhg": 190, "diastolic_mmhg": 112}  # grade 3: a high vital-sign alarm


async def test_a_batch_answers_every_message_in_order_and_stores_each_once(db: Database) -> None:
    homes = [await household(db, name=f"孙{n}") for n in range(3)]
    retired = await household(db, status=DeviceStatus.RETIRED, name="钱老人")
    taking = intake(db)
    earlier = raw(reading(message_id="sent-before"))
    first = await taking.receive_message(homes[0].device_id, earlier, ReadingSource.MQTT)
    repeated = raw(reading(message_id="twice-in-one"))
    batch: list[tuple[int, bytes]] = [
        (homes[0].device_id, raw(reading(message_id="a-1"))),
        (homes[1].device_id, b"{not json"),
        (homes[1].device_id, raw(reading("heart_rate", message_id="b-1"))),
        (987_654, raw(reading(message_id="ghost-1"))),
        (homes[2].device_id, repeated),
        (retired.device_id, raw(reading(message_id="old-1"))),
        (homes[0].device_id, earlier),  # the device did not see the first answer
        (homes[2].device_id, repeated),  # sent again before its answer came
        (homes[1].device_id, raw(reading("blood_pressure", CRISIS, message_id="b-2"))),
        (homes[2].device_id, raw(reading("spo2", message_id="c-2"))),
    ]
    outcomes = await taking.receive_batch(batch, ReadingSource.MQTT)

    assert len(outcomes) == len(batch)
    refused = {index: (outcome.reason, outcome.field) for index, outcome in enumerate(outcomes)
               if isinstance(outcome, ReadingRefused)}
    assert refused == {1: (RefusalReason.MALFORMED, None), 3: (RefusalReason.UNKNOWN_DEVICE, "device_id"),
                       5: (RefusalReason.DEVICE_RETIRED, "device_id")}
    receipts = {index: outcome for index, outcome in enumerate(outcomes) if isinstance(outcome, Receipt)}
    assert sorted(receipts) == [0, 2, 4, 6, 7, 8, 9]
    assert [receipts[index].message_id for index in (0, 2, 4, 6, 7, 8, 9)] == [
        "a-1", "b-1", "twice-in-one", "sent-before", "twice-in-one", "b-2", "c-2"]
    assert [index for index, receipt in receipts.items() if receipt.duplicate] == [6, 7]
    assert receipts[6].reading_id == first.reading_id  # answered as the first time
    assert receipts[7].reading_id == receipts[4].reading_id and not receipts[4].duplicate
    assert receipts[8].alarm_id is not None
    assert all(receipt.alarm_id is None for index, receipt in receipts.items() if index != 8)
    assert len({receipt.reading_id for receipt in receipts.values()}) == 6  # five new, and the earlier one

    async with db.transaction(read_only=True) as session:
        stored = {row.id: row for row in await session.scalars(select(Reading))}
        assert len(stored) == 6
        for index in (0, 2, 4, 8, 9):  # each the device's own, with its values, for its elder
            row = stored[receipts[index].reading_id]
            device_id, payload = batch[index]
            assert (row.device_id, row.source) == (device_id, ReadingSource.MQTT)
            assert row.values == reading_values(payload)
            assert row.elder_id == next(home.elder_id for home in homes if home.device_id == device_id)
        assert stored[receipts[8].reading_id].alarm_id == receipts[8].alarm_id
        messages = {(row.device_id, row.message_id): row.reading_id for row in await session.scalars(
            select(ReadingMessage))}
        assert messages == {(homes[0].device_id, "sent-before"): first.reading_id,
                            **{(batch[index][0], receipts[index].message_id): receipts[index].reading_id
                               for index in (0, 2, 4, 8, 9)}}
        assert await session.scalar(select(func.count()).select_from(Alarm)) == 1
    assert taking.taken["stored"] == 1 + 5 and taking.taken["duplicate"] == 2 and taking.taken["alarms"] == 1
    assert taking.refused == {RefusalReason.MALFORMED: 1, RefusalReason.UNKNOWN_DEVICE: 1,
                              RefusalReason.DEVICE_RETIRED: 1}


def reading_values(payload: bytes) -> dict[str, Any]:
    return dict(json.loads(payload)["values"])


async def test_the_trend_rule_in_one_batch_is_the_rule_one_at_a_time(db: Database) -> None:
    """The trend test's sequence (test_intake), sent as one batch: the follow-up order at the same reading, no
    second order for the same trend, a within-target reading ending it, and a new trend's order after it."""
    home = await household(db)
    await add_doctor(db, home.elder_id)
    taking = intake(db)
    now = dt.datetime.now(dt.UTC)
    sequence = [(12, ABOVE), (6, ABOVE), (5, {"systolic_mmhg": 132, "diastolic_mmhg": 80}), (4, ABOVE), (3, ABOVE),
                (2, ABOVE), (1, ABOVE), (0.5, ABOVE), (0.4, WITHIN), (0.3, ABOVE), (0.2, ABOVE), (0.1, ABOVE),
                (0.05, ABOVE)]
    batch = [(home.device_id, raw(reading("blood_pressure", values, measured_at=now - dt.timedelta(days=days_ago))))
             for days_ago, values in sequence]
    outcomes = await taking.receive_batch(batch, ReadingSource.MQTT)
    raised = [index for index, outcome in enumerate(outcomes)
              if isinstance(outcome, Receipt) and outcome.follow_up_order_id is not None]
    assert raised == [4, 11]
    assert await counts(db) == {"Reading": 13, "ReadingMessage": 13, "Alarm": 0, "WorkOrder": 2}
    assert taking.taken["follow_ups"] == 2


async def test_readings_out_of_range_in_one_batch_merge_into_one_alarm_between_plain_ones(db: Database) -> None:
    home = await household(db)
    taking = intake(db)
    woken: list[int] = []
    taking.on_alarm(lambda: woken.append(1))
    values = [WITHIN, CRISIS, WITHIN, CRISIS, WITHIN]
    outcomes = await taking.receive_batch([(home.device_id, raw(reading("blood_pressure", chosen)))
                                           for chosen in values], ReadingSource.MQTT)
    alarms = [outcome.alarm_id for outcome in outcomes if isinstance(outcome, Receipt)]
    assert alarms[0] is None and alarms[2] is None and alarms[4] is None
    assert alarms[1] is not None and alarms[3] == alarms[1]  # the repeat within the window is merged
    async with db.transaction(read_only=True) as session:
        alarm = await session.get_one(Alarm, alarms[1])
        assert alarm.repeat_count == 1  # counted once more on the first
        ids = [outcome.reading_id for outcome in outcomes if isinstance(outcome, Receipt)]
        assert ids == sorted(ids) and len(set(ids)) == 5  # stored in the order they came
    assert woken == [1]  # one wake-up for the batch


async def test_a_poison_message_costs_only_itself(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug met by one message (here: storing the out-of-range reading fails) fails its batch; the batch is taken
    again one message at a time, so only that message goes unanswered (the device sends it again)."""
    home = await household(db)
    other = await household(db, name="周老人")
    taking = intake(db)
    real_store = intake_module.store_reading

    async def failing_store(*args: Any, **kwargs: Any) -> Any:
        if kwargs["values"].get("systolic_mmhg") == CRISIS["systolic_mmhg"]:
            raise KeyError("a bug this reading meets")
        return await real_store(*args, **kwargs)

    monkeypatch.setattr(intake_module, "store_reading", failing_store)
    batch = [(home.device_id, raw(reading(message_id="fine-1"))),
             (other.device_id, raw(reading("blood_pressure", CRISIS, message_id="poison"))),
             (other.device_id, raw(reading(message_id="fine-2"))),
             (home.device_id, b"[]")]
    outcomes = await taking.receive_batch(batch, ReadingSource.MQTT)
    assert isinstance(outcomes[0], Receipt) and isinstance(outcomes[2], Receipt)
    assert outcomes[1] is None
    assert isinstance(outcomes[3], ReadingRefused) and outcomes[3].reason is RefusalReason.MALFORMED
    assert await counts(db) == {"Reading": 2, "ReadingMessage": 2, "Alarm": 0, "WorkOrder": 0}
    assert taking.taken["stored"] == 2 and taking.refused == {RefusalReason.MALFORMED: 1}


async def test_a_database_failure_takes_nothing_and_answers_nothing(tmp_path: Path) -> None:
    unreachable = Database(f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'callcenter.sqlite3'}")
    try:
        taking = intake(unreachable)
        with pytest.raises(Exception) as failure:
            await taking.receive_batch([(1, raw(reading())), (2, raw(reading()))], ReadingSource.MQTT)
        assert intake_module._database_failure(failure.value)
        assert taking.taken["stored"] == 0 and sum(taking.refused.values()) == 0
    finally:
        await unreachable.dispose()


async def test_ids_given_to_a_batch_follow_the_readings_stored_before(db: Database) -> None:
    """The batch takes its reading ids itself (PostgreSQL: the table's sequence; SQLite: after the highest), so a
    reading stored the whole way (an alarm) and a batch's plain ones never collide."""
    home = await household(db)
    taking = intake(db)
    for _ in range(3):
        values = [WITHIN, CRISIS, WITHIN, WITHIN]
        outcomes = await taking.receive_batch([(home.device_id, raw(reading("blood_pressure", chosen)))
                                               for chosen in values], ReadingSource.MQTT)
        assert all(isinstance(outcome, Receipt) for outcome in outcomes)
    async with db.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count(func.distinct(Reading.id)))) == 12
    hand = await taking.receive_message(home.device_id, raw(reading()), ReadingSource.MQTT)
    assert hand.reading_id not in {outcome.reading_id for outcome in outcomes if isinstance(outcome, Receipt)}
    assert (await counts(db))["Reading"] == 13
    # The alarm's emergency order (its merged repeats add none), and the trend's: the third crisis in the week.
    assert (await counts(db))["WorkOrder"] == 2

