"""Geofence crossings: transitions only (one alarm per stay on the forbidden side, at its first certain fix), the
allowed hours on the centre's clock, the accuracy rule, circles and polygons, stay-inside and keep-out fences; the
alarm is a geofence alarm of the alarms domain, with its work order, raised in the position's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from callcenter.alarms.models import Alarm, AlarmSeverity, AlarmSource, AlarmState, AlarmType
from callcenter.db.session import Database
from callcenter.locations.intake import PositionReceipt, parse_message, receive
from callcenter.locations.models import FenceKind, FenceShape, FenceSide, Geofence, GeofenceState
from callcenter.orders.models import WorkOrder, WorkOrderKind
from tests.unit.alarms.factory import HOME, MERGE, SKEW, household
from tests.unit.locations.factory import MORNING, NIGHT, east_of, fix, home_fence, intake, north_of, raw
from tests.unit.supervision_cases.factory import SHANGHAI

FAR = east_of(HOME, 1500)  # 1.5 km from home: out of the 500 m fence by 1 km
MINUTE = dt.timedelta(minutes=1)


async def _at(db: Database, device_id: int, where: tuple[float, float], at: dt.datetime, *, accuracy_m: float = 10,
              source: str = "gps", merge: dt.timedelta = MERGE) -> PositionReceipt:
    message = parse_message(raw(fix(where, measured_at=at, accuracy_m=accuracy_m, source=source)))
    async with db.transaction() as session:
        return await receive(session, device_id, AlarmSource.MQTT, message, now=at + dt.timedelta(seconds=2),
                             clock_skew=SKEW, merge_window=merge, tz=SHANGHAI)


async def _alarms(db: Database) -> list[Alarm]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(Alarm).order_by(Alarm.id))).all())


async def _state(db: Database, fence_id: int) -> GeofenceState | None:
    async with db.transaction(read_only=True) as session:
        return await session.get(GeofenceState, fence_id)


async def test_inside_inside_outside_outside_raises_one_alarm_at_the_first_outside(db: Database) -> None:
    home = await household(db)
    fence_id = await home_fence(db, home.elder_id)
    receipts = [await _at(db, home.device_id, where, NIGHT + n * MINUTE)
                for n, where in enumerate([HOME, east_of(HOME, 100), FAR, east_of(HOME, 2000)])]
    assert [len(r.alarm_ids) for r in receipts] == [0, 0, 1, 0]
    [alarm] = await _alarms(db)
    assert (alarm.type, alarm.severity, alarm.state, alarm.source, alarm.elder_id, alarm.device_id) == (
        AlarmType.GEOFENCE, AlarmSeverity.HIGH, AlarmState.NEW, AlarmSource.MQTT, home.elder_id, home.device_id)
    assert alarm.occurred_at == NIGHT + 2 * MINUTE and alarm.id == receipts[2].alarm_ids[0]
    assert alarm.payload == {
        "geofence_id": fence_id, "geofence_name": "家附近", "kind": "stay_inside", "event": "exit",
        "crossing_seen": True, "crossed_at": (NIGHT + 2 * MINUTE).isoformat(),
        "measured_at": (NIGHT + 2 * MINUTE).isoformat(), "allowed_from": "07:00", "allowed_until": "20:00",
        "position_id": receipts[2].position_id, "position_message_id": alarm.payload["position_message_id"]}
    assert alarm.location == {"latitude": FAR[0], "longitude": FAR[1], "accuracy_m": 10.0, "source": "gps"}
    async with db.transaction(read_only=True) as session:
        order = await session.get(WorkOrder, alarm.work_order_id)
        assert order is not None and (order.kind, order.priority, order.elder_id) == (
            WorkOrderKind.EMERGENCY, 2, home.elder_id)
    state = await _state(db, fence_id)
    assert state is not None and (state.side, state.since, state.alarm_id) == (
        FenceSide.OUTSIDE, NIGHT + 2 * MINUTE, alarm.id)


async def test_re_entering_resets_the_fence_and_a_new_exit_alarms_again(db: Database) -> None:
    home = await household(db)
    fence_id = await home_fence(db, home.elder_id)
    sequence = [HOME, FAR, FAR, HOME, HOME, FAR]
    receipts = [await _at(db, home.device_id, where, NIGHT + 10 * n * MINUTE, merge=dt.timedelta(0))
                for n, where in enumerate(sequence)]
    assert [len(r.alarm_ids) for r in receipts] == [0, 1, 0, 0, 0, 1]
    assert len(await _alarms(db)) == 2
    state = await _state(db, fence_id)
    assert state is not None and state.alarm_id == receipts[-1].alarm_ids[0]


async def test_a_new_exit_while_the_last_alarm_is_open_is_merged_into_it(db: Database) -> None:
    home = await household(db)
    await home_fence(db, home.elder_id)
    for n, where in enumerate([HOME, FAR, HOME, FAR]):
        await _at(db, home.device_id, where, NIGHT + n * MINUTE)
    [alarm] = await _alarms(db)
    assert alarm.repeat_count == 1
    async with db.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(WorkOrder)) == 1


async def test_allowed_hours_on_the_centres_clock(db: Database) -> None:
    home = await household(db)
    await home_fence(db, home.elder_id)  # may be out 07:00–20:00 Beijing time
    # Out at 10:00 (02:00 UTC): allowed, no alarm; still out at 19:59: none.
    assert (await _at(db, home.device_id, HOME, MORNING)).alarm_ids == ()
    assert (await _at(db, home.device_id, FAR, MORNING + MINUTE)).alarm_ids == ()
    # 20:00 Beijing (12:00 UTC, inside 07–20 on UTC's clock): the centre's window has closed (its end exclusive).
    evening = MORNING + dt.timedelta(hours=10)
    assert (await _at(db, home.device_id, FAR, evening - MINUTE)).alarm_ids == ()
    late = await _at(db, home.device_id, FAR, evening)
    assert len(late.alarm_ids) == 1  # still out after the hours: one alarm, though no crossing was seen now
    assert (await _at(db, home.device_id, FAR, evening + MINUTE)).alarm_ids == ()
    [alarm] = await _alarms(db)
    assert (alarm.payload["crossing_seen"], alarm.payload["crossed_at"]) == (False, (MORNING + MINUTE).isoformat())
    other = await household(db, name="钱玉兰")
    await home_fence(db, other.elder_id, hours=(22 * 60, 6 * 60))  # over midnight: out 22:00–06:00 only
    assert (await _at(db, other.device_id, HOME, NIGHT)).alarm_ids == ()
    assert (await _at(db, other.device_id, FAR, NIGHT + MINUTE)).alarm_ids == ()  # 22:01: allowed
    assert (await _at(db, other.device_id, FAR, NIGHT + dt.timedelta(hours=7))).alarm_ids == ()  # 05:00: allowed
    assert (await _at(db, other.device_id, HOME, NIGHT + dt.timedelta(hours=8))).alarm_ids == ()
    next_morning = MORNING + dt.timedelta(days=1, minutes=1)
    assert len((await _at(db, other.device_id, FAR, next_morning)).alarm_ids) == 1  # 10:01: not allowed


async def test_an_inaccurate_fix_that_may_still_be_inside_is_not_an_exit(db: Database) -> None:
    home = await household(db)
    fence_id = await home_fence(db, home.elder_id)
    await _at(db, home.device_id, HOME, NIGHT)
    # An 800 m cell-tower fix 800 m from home: its circle still covers the fence. No exit, state untouched.
    assert (await _at(db, home.device_id, east_of(HOME, 800), NIGHT + MINUTE, accuracy_m=800,
                      source="lbs")).alarm_ids == ()
    state = await _state(db, fence_id)
    assert state is not None and (state.side, state.last_measured_at) == (FenceSide.INSIDE, NIGHT)
    # 1.4 km away with the same 800 m accuracy: certainly out.
    assert len((await _at(db, home.device_id, east_of(HOME, 1400), NIGHT + 2 * MINUTE, accuracy_m=800,
                          source="lbs")).alarm_ids) == 1
    # Back near home, but the fix's circle crosses the line: the stay outside goes on (no reset, no new alarm).
    await _at(db, home.device_id, east_of(HOME, 450), NIGHT + 3 * MINUTE, accuracy_m=100, source="wifi")
    state = await _state(db, fence_id)
    assert state is not None and state.side is FenceSide.OUTSIDE and state.alarm_id is not None


async def test_an_older_fix_arriving_late_moves_nothing(db: Database) -> None:
    home = await household(db)
    fence_id = await home_fence(db, home.elder_id)
    await _at(db, home.device_id, HOME, NIGHT + 5 * MINUTE)
    late = await _at(db, home.device_id, FAR, NIGHT)  # measured before the last judged fix: stored, not judged
    assert late.alarm_ids == () and await _alarms(db) == []
    state = await _state(db, fence_id)
    assert state is not None and state.side is FenceSide.INSIDE


async def test_a_keep_out_polygon_alarms_on_entry(db: Database) -> None:
    home = await household(db)
    # The river bank: a 300 m × 200 m block 1 km north of home, entering it is forbidden at any hour.
    sw = north_of(HOME, 1000)
    corners = [sw, east_of(sw, 300), north_of(east_of(sw, 300), 200), north_of(sw, 200)]
    async with db.transaction() as session:
        bank = Geofence(elder_id=home.elder_id, name="河边", kind=FenceKind.KEEP_OUT, shape=FenceShape.POLYGON,
                        area={"points": [{"lat": lat, "lon": lon} for lat, lon in corners]}, active=True)
        session.add(bank)
        await session.flush()
        bank_id = bank.id
    await home_fence(db, home.elder_id, hours=(0, 23 * 60 + 59))  # home: out allowed all day but a minute
    middle = north_of(east_of(sw, 150), 100)
    receipts = [await _at(db, home.device_id, where, MORNING + n * MINUTE)
                for n, where in enumerate([HOME, north_of(HOME, 900), middle, middle, north_of(HOME, 800)])]
    assert [len(r.alarm_ids) for r in receipts] == [0, 0, 1, 0, 0]
    [alarm] = await _alarms(db)
    assert (alarm.payload["geofence_id"], alarm.payload["kind"], alarm.payload["event"]) == (
        bank_id, "keep_out", "entry")
    state = await _state(db, bank_id)
    assert state is not None and state.side is FenceSide.OUTSIDE and state.alarm_id is None  # left again: reset


async def test_first_fix_on_the_forbidden_side_alarms_and_inactive_fences_are_not_judged(db: Database) -> None:
    home = await household(db)
    fence_id = await home_fence(db, home.elder_id)
    async with db.transaction() as session:
        fence = await session.get(Geofence, fence_id)
        assert fence is not None
        fence.active = False
    assert (await _at(db, home.device_id, FAR, NIGHT)).alarm_ids == ()
    async with db.transaction() as session:
        fence = await session.get(Geofence, fence_id)
        assert fence is not None
        fence.active = True
    first = await _at(db, home.device_id, FAR, NIGHT + MINUTE)  # the fence's first fix: found outside at night
    assert len(first.alarm_ids) == 1


async def test_a_fix_that_raises_a_geofence_alarm_wakes_the_distributor_once(db: Database) -> None:
    """The alarm distributor listens (``PositionIntake.on_alarm``): told once the crossing is committed, not for a
    fix inside, nor for the device's resend of the crossing fix."""
    home = await household(db)
    await home_fence(db, home.elder_id)
    positions = intake(db)
    woken: list[int] = []
    positions.on_alarm(lambda: woken.append(1))
    await positions.receive_message(home.device_id, raw(fix(HOME, measured_at=NIGHT)), AlarmSource.MQTT)
    assert woken == []
    out = raw(fix(FAR, measured_at=NIGHT + MINUTE))
    receipt = await positions.receive_message(home.device_id, out, AlarmSource.MQTT)
    assert len(receipt.alarm_ids) == 1 and woken == [1]
    await positions.receive_message(home.device_id, out, AlarmSource.MQTT)
    assert woken == [1]
