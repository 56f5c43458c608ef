"""The alarm card's parts beside the elder's file (issue 15): ``track`` — the elder's fixes of the last day, oldest
first, as the positions API lists them —, ``readings`` — the latest reading of each type of the last 30 days —, and
``fences`` — the elder's geofences as the geofences API gives them —; None without any, and for an alarm of a device
nobody wears. The card's audited read names them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from callcenter import push
from callcenter.agents.state import AgentRegistry, DeviceState
from callcenter.alarms.distribution import CARD_READ, AlarmDistributor
from callcenter.alarms.models import Alarm, AlarmSource
from callcenter.audit.models import AuditEntry
from callcenter.db.session import Database
from callcenter.desk.alarm_card import build_alarm_card
from callcenter.readings.models import ReadingSource
from callcenter.users.models import Role, User
from tests.unit.alarms import factory as alarms
from tests.unit.locations import factory as locations
from tests.unit.readings import factory as readings


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


async def test_the_card_carries_the_latest_reading_of_each_type_of_the_last_month(db: Database) -> None:
    home = await alarms.household(db)
    taking = readings.intake(db)
    now = dt.datetime.now(dt.UTC)
    sent = [("blood_pressure", {"systolic_mmhg": 150, "diastolic_mmhg": 88}, dt.timedelta(days=40)),  # too old
            ("blood_pressure", {"systolic_mmhg": 132, "diastolic_mmhg": 84}, dt.timedelta(days=2)),
            ("blood_pressure", {"systolic_mmhg": 186, "diastolic_mmhg": 112}, dt.timedelta(hours=3)),  # out of range
            ("heart_rate", {"bpm": 74}, dt.timedelta(hours=5)),
            ("spo2", {"percent": 96}, dt.timedelta(days=29))]
    for reading_type, values, age in sent:
        await taking.receive_message(home.device_id, readings.raw(readings.reading(
            reading_type, values, measured_at=now - age)), ReadingSource.MQTT)
    card = await _card(db, home.device_id)
    latest = {reading["type"]: reading for reading in card["readings"]}
    assert [reading["type"] for reading in card["readings"]] == ["blood_pressure", "heart_rate", "spo2"]
    assert latest["blood_pressure"]["values"] == {"systolic_mmhg": 186, "diastolic_mmhg": 112}
    assert latest["blood_pressure"]["out_of_range"] and not latest["heart_rate"]["out_of_range"]
    assert latest["heart_rate"]["values"] == {"bpm": 74} and latest["heart_rate"]["source"] == "mqtt"
    assert dt.datetime.fromisoformat(latest["spo2"]["measured_at"]) == (now - dt.timedelta(days=29)).replace(
        microsecond=(now - dt.timedelta(days=29)).microsecond)


async def test_the_card_carries_the_elders_geofences_for_its_map(db: Database) -> None:
    home = await alarms.household(db)
    fence_id = await locations.home_fence(db, home.elder_id, radius_m=300, name="小区")
    card = await _card(db, home.device_id)
    [fence] = card["fences"]
    assert (fence["id"], fence["name"], fence["kind"], fence["shape"]) == (fence_id, "小区", "stay_inside", "circle")
    assert fence["area"] == {"center": {"lat": alarms.HOME[0], "lon": alarms.HOME[1]}, "radius_m": 300}
    assert fence["active"] is True


async def test_nothing_measured_or_fenced_or_nobody_wearing_is_none(db: Database) -> None:
    quiet = await alarms.household(db)
    card = await _card(db, quiet.device_id)
    assert card["readings"] is None and card["fences"] is None
    unworn = await alarms.household(db, with_elder=False)
    card = await _card(db, unworn.device_id)
    assert (card["elder"], card["readings"], card["fences"]) == (None, None, None)


async def test_the_offered_cards_audited_read_names_its_readings_and_fences(db: Database) -> None:
    """The offer is a read of the elder's file (``elder.alarm_card``): its entry names the parts the card carried
    beside the file — the readings (health data) and the fences — and never a value."""
    home = await alarms.household(db)
    await locations.home_fence(db, home.elder_id)
    await readings.intake(db).receive_message(home.device_id, readings.raw(readings.reading(
        "blood_pressure", {"systolic_mmhg": 131, "diastolic_mmhg": 83})), ReadingSource.MQTT)
    await alarms.intake(db).receive_message(home.device_id, alarms.raw(alarms.message()), AlarmSource.MQTT)
    async with db.transaction() as session:
        session.add(User(username="li", role=Role.AGENT, password_hash="x"))
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    for queue in ("emergency", "hotline"):
        await registry.handle({"Event": "QueueMemberAdded", "Queue": queue, "MemberName": "li",
                               "Interface": "PJSIP/li", "Paused": "0", "Status": str(int(DeviceState.NOT_INUSE))})
    li = hub.subscribe("li", Role.AGENT)
    distributor = AlarmDistributor(db, registry, answer_target=dt.timedelta(seconds=60),
                                   offer_timeout=dt.timedelta(seconds=30), sweep_seconds=10)
    distributor.publish_to(hub, build_alarm_card)
    done = await distributor.distribute(dt.datetime.now(dt.UTC))
    assert list(done.offered.values()) == ["li"]
    card = li.queue.get_nowait()
    assert card is not None and card["readings"] and card["fences"]
    async with db.transaction(read_only=True) as session:
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == CARD_READ))).all()
    fields = entry.details["fields"]
    assert {"readings", "fences"} <= set(fields) and "track" not in fields  # no fix: no track on the card
    assert "131" not in str(entry.details) and "家附近" not in str(entry.details)
