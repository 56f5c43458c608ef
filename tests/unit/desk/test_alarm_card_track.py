"""The alarm card's ``track`` (issue 15): the elder's fixes of the last day, oldest first, as the positions API
lists them (WGS-84 with their accuracy), for the card's map; None for an elder without any, and for an alarm of a
device nobody wears."""

from __future__ import annotations

import datetime as dt
from typing import Any

from callcenter.alarms.models import Alarm, AlarmSource
from callcenter.db.session import Database
from callcenter.desk.alarm_card import build_alarm_card
from tests.unit.alarms import factory as alarms
from tests.unit.locations import factory as locations


async def _card(db: Database, device_id: int) -> dict[str, Any]:
    receipt = await alarms.intake(db).receive_message(device_id, alarms.raw(alarms.message()), AlarmSource.MQTT)
    async with db.transaction() as session:
        alarm = await session.get(Alarm, receipt.alarm_id)
        assert alarm is not None
        return await build_alarm_card(session, alarm)


async def test_the_card_carries_the_elders_last_day_of_fixes_oldest_first(db: Database) -> None:
    home = await alarms.household(db)
    now = dt.datetime.now(dt.UTC)
    positions = locations.intake(db)
    fixes = [(dt.timedelta(hours=25), locations.east_of(alarms.HOME, 900)),  # older than a day: not on the card
             (dt.timedelta(minutes=40), locations.east_of(alarms.HOME, 100)),
             (dt.timedelta(minutes=5), locations.north_of(alarms.HOME, 200))]
    for age, where in fixes:
        await positions.receive_message(home.device_id, locations.raw(locations.fix(
            where, measured_at=now - age, accuracy_m=30, source="lbs")), AlarmSource.MQTT)
    card = await _card(db, home.device_id)
    assert [(fix["lat"], fix["lon"]) for fix in card["track"]] == [fixes[1][1], fixes[2][1]]
    assert {(fix["accuracy_m"], fix["source"]) for fix in card["track"]} == {(30, "lbs")}
    assert (card["elder"]["latitude"], card["elder"]["longitude"]) == alarms.HOME  # the map's home


async def test_no_fixes_or_no_elder_is_no_track(db: Database) -> None:
    quiet = await alarms.household(db)
    assert (await _card(db, quiet.device_id))["track"] is None
    unworn = await alarms.household(db, with_elder=False)
    card = await _card(db, unworn.device_id)
    assert card["elder"] is None and card["track"] is None
