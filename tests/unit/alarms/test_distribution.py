"""The alarm distributor (alarms.distribution): the most urgent alarm first to a free agent's panel, never to an agent
on a call, with an SOS ringing, in wrap-up, paused, without a panel or holding another alarm; re-offered after the
offer timeout; overflowing to the supervisors at the answer target; and what was offered survives a restart.

Real parts: the database (SQLite and PostgreSQL), the agent registry fed AMI's queue-member events, the panels'
fan-out with a subscriber per open panel, the desk's card builder, and the real Mosquitto for a fall published by a
device."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select

from callcenter import push
from callcenter.agents.state import WRAPUP_REASON, AgentRegistry, DeviceState
from callcenter.alarms import services
from callcenter.alarms.distribution import CARD_READ, AlarmDistributor
from callcenter.alarms.models import Alarm, AlarmOutcome, AlarmSource, AlarmState, AlarmType
from callcenter.alarms.mqtt import MqttAlarms
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor
from callcenter.db.session import Database
from callcenter.desk.alarm_card import build_alarm_card
from callcenter.telephony.device_topics import ALARM, device_topic, mqtt_username
from callcenter.users.models import Role, User
from tests.mqtt import TestBroker, running
from tests.unit.alarms.factory import household, intake, message, raw
from tests.unit.supervision_cases.factory import SHANGHAI

TARGET = dt.timedelta(seconds=60)
OFFER = dt.timedelta(seconds=20)
QUEUES = ("emergency", "hotline")


async def _accounts(db: Database, *names: str) -> dict[str, Actor]:
    async with db.transaction() as session:
        users = [User(username=name, role=Role.AGENT, password_hash="x") for name in names]
        session.add_all(users)
        await session.flush()
        return {user.username: Actor(user.id, user.username) for user in users}


async def _agent(registry: AgentRegistry, name: str, *, state: DeviceState = DeviceState.NOT_INUSE,
                 since: dt.datetime | None = None) -> None:
    """``name`` logged in to both queues as AMI reports it, with their phone in ``state``."""
    for queue in QUEUES:
        await registry.handle({"Event": "QueueMemberAdded", "Queue": queue, "MemberName": name,
                               "Interface": f"PJSIP/{name}", "Paused": "0", "Status": str(int(state))})
    agent = registry.get(name)
    assert agent is not None
    if since is not None:
        agent.since = since


async def _phone(registry: AgentRegistry, name: str, state: DeviceState) -> None:
    await registry.handle({"Event": "QueueMemberStatus", "Queue": "emergency", "MemberName": name,
                           "Interface": f"PJSIP/{name}", "Status": str(int(state))})


async def _alarm(db: Database, alarm_type: str, *, received_at: dt.datetime | None = None) -> int:
    home = await household(db)
    receipt = await intake(db).receive_message(home.device_id, raw(message(alarm_type=alarm_type)), AlarmSource.MQTT)
    if received_at is not None:
        async with db.transaction() as session:
            alarm = await session.get(Alarm, receipt.alarm_id)
            assert alarm is not None
            alarm.received_at = received_at
    return receipt.alarm_id


def _distributor(db: Database, registry: AgentRegistry, hub: push.Fanout) -> AlarmDistributor:
    distributor = AlarmDistributor(db, registry, answer_target=TARGET, offer_timeout=OFFER, sweep_seconds=10)
    distributor.publish_to(hub, build_alarm_card)
    return distributor


def _drain(subscriber: push.Subscriber) -> list[dict[str, Any]]:
    messages = []
    while not subscriber.queue.empty():
        message = subscriber.queue.get_nowait()
        assert message is not None
        messages.append(message)
    return messages


def _offers(subscriber: push.Subscriber) -> list[int]:
    return [m["alarm"]["id"] for m in _drain(subscriber) if m["type"] == "alarm_offer"]


async def _row(db: Database, alarm_id: int) -> Alarm:
    async with db.transaction(read_only=True) as session:
        alarm = await session.get(Alarm, alarm_id)
        assert alarm is not None
        return alarm


async def test_the_most_urgent_alarm_goes_first_to_the_agent_free_longest_with_the_card(db: Database) -> None:
    await _accounts(db, "li", "wang")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    start = dt.datetime.now(dt.UTC)
    await _agent(registry, "li", since=start - dt.timedelta(minutes=5))
    await _agent(registry, "wang", since=start - dt.timedelta(minutes=1))
    li, wang = hub.subscribe("li", Role.AGENT), hub.subscribe("wang", Role.AGENT)
    vital = await _alarm(db, "vital_sign", received_at=start - dt.timedelta(seconds=30))
    water = await _alarm(db, "water_leak", received_at=start - dt.timedelta(seconds=20))
    smoke = await _alarm(db, "smoke", received_at=start - dt.timedelta(seconds=5))
    done = await _distributor(db, registry, hub).distribute(start)
    # Smoke (life at risk) before the older water leak, the vital sign last: two agents, two alarms offered.
    assert done.offered == {smoke: "li", water: "wang"}
    [card] = _drain(li)
    assert card["type"] == "alarm_offer" and card["alarm"]["type"] == "smoke" and card["offered_to"] == "li"
    assert card["elder"]["full_name"] == "赵淑珍" and card["device"]["kind"] == "watch"
    assert card["alarm"]["work_order_number"] and card["readings"] is None and card["track"] is None
    assert card["answer_by"] == (start - dt.timedelta(seconds=5) + TARGET).isoformat()
    assert _offers(wang) == [water]
    row = await _row(db, smoke)
    assert (row.offered_to, row.offered_at, row.first_offered_at, row.offer_count) == ("li", start, start, 1)
    assert (await _row(db, vital)).offered_to is None
    async with db.transaction(read_only=True) as session:
        reads = (await session.scalars(select(AuditEntry).where(AuditEntry.action == CARD_READ))).all()
        assert sorted(entry.actor_label for entry in reads) == ["li", "wang"]


async def test_agents_on_a_call_ringing_in_wrap_up_paused_without_a_panel_or_holding_an_alarm_get_none(
        db: Database) -> None:
    actors = await _accounts(db, "calling", "ringing", "writing", "resting", "away", "holding", "helping", "free")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    await _agent(registry, "calling", state=DeviceState.INUSE)
    await _agent(registry, "ringing", state=DeviceState.RINGING)  # an SOS voice call rings: it comes first
    await _agent(registry, "writing")
    await registry.handle({"Event": "QueueMemberPause", "Queue": "hotline", "MemberName": "writing",
                           "Interface": "PJSIP/writing", "Paused": "1", "PausedReason": WRAPUP_REASON})
    await _agent(registry, "resting")
    for queue in QUEUES:
        await registry.handle({"Event": "QueueMemberPause", "Queue": queue, "MemberName": "resting",
                               "Interface": "PJSIP/resting", "Paused": "1", "PausedReason": "meal"})
    await _agent(registry, "away")  # logged in, but the desk is not open
    await _agent(registry, "holding")
    await _agent(registry, "helping")
    panels = {name: hub.subscribe(name, Role.AGENT) for name in ("calling", "ringing", "writing", "resting",
                                                                  "holding", "helping")}
    held, helped = await _alarm(db, "fall"), await _alarm(db, "smoke")
    async with db.transaction() as session:
        await services.take(session, held, version=1, actor=actors["holding"])
        await services.take(session, helped, version=1, actor=actors["helping"])
        await services.respond(session, helped, version=2, actor=actors["helping"], role=Role.AGENT)
    gas = await _alarm(db, "gas")
    distributor = _distributor(db, registry, hub)
    done = await distributor.distribute()
    assert done.offered == {}
    assert all(_offers(panel) == [] for panel in panels.values())
    # An agent becomes free: the alarm goes to them.
    await _agent(registry, "free")
    free = hub.subscribe("free", Role.AGENT)
    assert (await distributor.distribute()).offered == {gas: "free"}
    assert _offers(free) == [gas]


async def test_an_offer_not_taken_in_time_goes_to_another_agent_and_the_first_card_is_withdrawn(
        db: Database) -> None:
    await _accounts(db, "li", "wang")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    start = dt.datetime.now(dt.UTC)
    await _agent(registry, "li", since=start - dt.timedelta(minutes=5))
    li = hub.subscribe("li", Role.AGENT)
    fall = await _alarm(db, "fall", received_at=start)
    distributor = _distributor(db, registry, hub)
    assert (await distributor.distribute(start)).offered == {fall: "li"}
    # Within the timeout nothing moves, even with another agent free now.
    await _agent(registry, "wang", since=start - dt.timedelta(minutes=9))
    wang = hub.subscribe("wang", Role.AGENT)
    soon = await distributor.distribute(start + OFFER - dt.timedelta(seconds=1))
    assert soon.offered == {} and soon.next_due == start + OFFER
    late = start + OFFER
    done = await distributor.distribute(late)
    assert done.offered == {fall: "wang"} and done.withdrawn == {fall: "li"}
    assert [m for m in _drain(li) if m["type"] == "alarm_withdrawn"] == [
        {"type": "alarm_withdrawn", "alarm_id": fall, "reason": "timeout"}]
    assert _offers(wang) == [fall]
    row = await _row(db, fall)
    assert (row.offered_to, row.offered_at, row.first_offered_at, row.offer_count) == ("wang", late, start, 2)
    # Nobody else free: it comes back to the agent who let it go.
    await _phone(registry, "li", DeviceState.INUSE)
    assert (await distributor.distribute(late + OFFER)).offered == {fall: "wang"}


async def test_an_offer_is_withdrawn_when_an_sos_rings_the_agents_phone(db: Database) -> None:
    await _accounts(db, "li", "wang")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    start = dt.datetime.now(dt.UTC)
    await _agent(registry, "li", since=start - dt.timedelta(minutes=5))
    await _agent(registry, "wang", state=DeviceState.INUSE)
    li, wang = hub.subscribe("li", Role.AGENT), hub.subscribe("wang", Role.AGENT)
    smoke = await _alarm(db, "smoke", received_at=start)
    distributor = _distributor(db, registry, hub)
    await distributor.distribute(start)
    await _phone(registry, "li", DeviceState.RINGING)
    await _phone(registry, "wang", DeviceState.NOT_INUSE)
    done = await distributor.distribute(start + dt.timedelta(seconds=2))
    assert done.offered == {smoke: "wang"} and done.withdrawn == {smoke: "li"}
    assert {"type": "alarm_withdrawn", "alarm_id": smoke, "reason": "busy"} in _drain(li)
    assert _offers(wang) == [smoke]


async def test_past_the_answer_target_it_overflows_to_supervisors_and_stays_offered_until_taken(
        db: Database) -> None:
    actors = await _accounts(db, "li")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    start = dt.datetime.now(dt.UTC)
    await _agent(registry, "li")
    li = hub.subscribe("li", Role.AGENT)
    supervisor, admin = hub.subscribe("zhang", Role.SUPERVISOR), hub.subscribe("root", Role.ADMIN)
    fall = await _alarm(db, "fall", received_at=start)
    distributor = _distributor(db, registry, hub)
    first = await distributor.distribute(start)
    assert first.overflowed == [] and first.next_due == start + OFFER
    assert _drain(supervisor) == []
    await distributor.distribute(start + TARGET - dt.timedelta(milliseconds=1))
    assert _drain(supervisor) == []
    at_target = start + TARGET
    done = await distributor.distribute(at_target)
    assert done.overflowed == [fall] and (await _row(db, fall)).offered_to == "li"  # still offered
    [notice] = _drain(supervisor)
    assert notice["type"] == "alarm_overflow" and notice["alarm"]["id"] == fall
    assert notice["answer_target_seconds"] == 60 and [m["type"] for m in _drain(admin)] == ["alarm_overflow"]
    assert (await _row(db, fall)).overflowed_at == at_target
    # Once: the next round does not notify again; a supervisor's panel that connects now is told (replay).
    await distributor.distribute(at_target + dt.timedelta(seconds=1))
    assert _drain(supervisor) == []
    late = hub.subscribe("chen", Role.SUPERVISOR)
    distributor.replay(late)
    assert [m["type"] for m in _drain(late)] == ["alarm_overflow"]
    _drain(li)
    async with db.transaction() as session:
        await services.take(session, fall, version=1, actor=actors["li"])
    await distributor.distribute(at_target + dt.timedelta(seconds=2))
    assert _drain(supervisor) == [{"type": "alarm_overflow_ended", "alarm_id": fall}]
    assert _drain(li) == []  # li took it: the card stays on li's panel
    row = await _row(db, fall)
    assert row.taken_at is not None and row.first_offered_at == start and row.taken_at >= row.received_at
    [check] = (await distributor.health_checks()).values()
    assert check.ok and check.facts == {"offered": 0, "overflowing": 0, "failed_rounds": 0}


async def test_a_restart_offers_again_from_the_database(db: Database) -> None:
    await _accounts(db, "li")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    start = dt.datetime.now(dt.UTC)
    await _agent(registry, "li")
    hub.subscribe("li", Role.AGENT)
    zhang = hub.subscribe("zhang", Role.SUPERVISOR)
    gas = await _alarm(db, "gas", received_at=start - TARGET)
    await _distributor(db, registry, hub).distribute(start)
    _drain(zhang)
    # A new process: nothing in memory, the panels reconnect to a new hub.
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    await _agent(registry, "li")
    li, zhang = hub.subscribe("li", Role.AGENT), hub.subscribe("zhang", Role.SUPERVISOR)
    restarted = _distributor(db, registry, hub)
    done = await restarted.distribute(start + dt.timedelta(seconds=3))
    assert done.offered == {gas: "li"} and done.overflowed == []  # the same offer shown again, not overflowed twice
    assert _offers(li) == [gas] and [m["type"] for m in _drain(zhang)] == ["alarm_overflow"]
    row = await _row(db, gas)
    assert (row.offered_at, row.offer_count, row.overflowed_at) == (start, 1, start)
    # A panel that reloads gets its card again.
    again = hub.subscribe("li", Role.AGENT)
    restarted.replay(again)
    assert _offers(again) == [gas]


async def test_a_reloaded_panel_gets_the_card_of_the_alarm_its_agent_holds(db: Database) -> None:
    actors = await _accounts(db, "li")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    await _agent(registry, "li")
    hub.subscribe("li", Role.AGENT, user_id=actors["li"].id)
    gas = await _alarm(db, "gas")
    distributor = _distributor(db, registry, hub)
    await distributor.distribute()
    async with db.transaction() as session:
        await services.take(session, gas, version=1, actor=actors["li"])
    await distributor.distribute()
    reloaded = hub.subscribe("li", Role.AGENT, user_id=actors["li"].id)
    distributor.replay(reloaded)
    assert _drain(reloaded) == []  # sent by the next round (it reads the database)
    await distributor.distribute()
    [card] = _drain(reloaded)
    assert card["type"] == "alarm_offer" and card["alarm"]["id"] == gas and card["alarm"]["state"] == "taken"
    await distributor.distribute()
    assert _drain(reloaded) == []  # once


async def test_a_stored_alarm_wakes_the_running_distributor_at_once(db: Database) -> None:
    await _accounts(db, "li")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    await _agent(registry, "li")
    li = hub.subscribe("li", Role.AGENT)
    # A sweep far longer than the test: only the intake's signal can make the offer in time.
    distributor = AlarmDistributor(db, registry, answer_target=TARGET, offer_timeout=OFFER, sweep_seconds=600)
    distributor.publish_to(hub, build_alarm_card)
    home = await household(db)
    alarms = intake(db)
    alarms.on_stored(distributor.wake)
    await distributor.start()
    try:
        await asyncio.sleep(0)  # its first round: nothing to offer
        receipt = await alarms.receive_message(home.device_id, raw(message(alarm_type="fall")), AlarmSource.MQTT)
        async with asyncio.timeout(10):
            offer = await li.next()
        assert offer is not None and offer["type"] == "alarm_offer" and offer["alarm"]["id"] == receipt.alarm_id
        async with db.transaction() as session:
            await services.take(session, receipt.alarm_id, version=1, actor=Actor(None, "li"))
            await services.resolve(session, receipt.alarm_id, version=2, outcome=AlarmOutcome.TEST, note=None,
                                   actor=Actor(None, "li"), role=Role.AGENT)
        distributor.wake()
        async with asyncio.timeout(10):
            withdrawn = await li.next()
        assert withdrawn == {"type": "alarm_withdrawn", "alarm_id": receipt.alarm_id, "reason": "taken"}
        assert (await _row(db, receipt.alarm_id)).state is AlarmState.RESOLVED
    finally:
        await distributor.stop()


async def test_answer_times_per_type_count_against_the_targets(db: Database) -> None:
    actors = await _accounts(db, "li")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    quick = await _alarm(db, "fall", received_at=start)
    slow = await _alarm(db, "fall", received_at=start)
    never = await _alarm(db, "fall", received_at=start)
    smoke = await _alarm(db, "smoke", received_at=start)
    for alarm_id, after in ((quick, 30), (slow, 120), (smoke, 200)):
        async with db.transaction() as session:
            await services.take(session, alarm_id, version=1, actor=actors["li"],
                                now=start + dt.timedelta(seconds=after))
    async with db.transaction() as session:
        (await session.get(Alarm, never)).overflowed_at = start + TARGET  # type: ignore[union-attr]
    async with db.transaction(read_only=True) as session:
        figures = await services.answer_times(session, since=start, until=start + dt.timedelta(hours=1),
                                              now=start + dt.timedelta(seconds=300))
        ringing = await services.answer_times(session, since=start, until=start + dt.timedelta(hours=1),
                                              now=start + dt.timedelta(seconds=90))
    assert figures[AlarmType.FALL] == {"alarms": 3, "answered": 2, "overflowed": 1, "longest_seconds": 120.0,
                                       "within_60s": 1, "judged_60s": 3, "within_180s": 2, "judged_180s": 3}
    assert figures[AlarmType.SMOKE] == {"alarms": 1, "answered": 1, "overflowed": 0, "longest_seconds": 200.0,
                                        "within_60s": 0, "judged_60s": 1, "within_180s": 0, "judged_180s": 1}
    # 90 s in, the alarm never taken has missed 60 s but may still make 180 s: not judged against it yet.
    assert ringing[AlarmType.FALL]["judged_60s"] == 3 and ringing[AlarmType.FALL]["judged_180s"] == 2


async def test_a_fall_published_over_mqtt_pops_on_the_free_agents_panel_at_once(db: Database,
                                                                                broker: TestBroker) -> None:
    await _accounts(db, "li")
    registry, hub = AgentRegistry(), push.Fanout("desk", 64)
    await _agent(registry, "li")
    li = hub.subscribe("li", Role.AGENT)
    distributor = AlarmDistributor(db, registry, answer_target=TARGET, offer_timeout=OFFER, sweep_seconds=600)
    distributor.publish_to(hub, build_alarm_card)
    alarms = intake(db)
    alarms.on_stored(distributor.wake)
    home = await household(db)
    password = secrets.token_urlsafe(18)
    broker.broker.set_password(mqtt_username(home.device_id), password)
    client = broker.platform_client()
    subscription = MqttAlarms(alarms, SHANGHAI).subscription()
    client.subscribe(subscription.topic_filter, subscription.handler, on_refused=subscription.on_refused,
                     max_batch=subscription.max_batch)
    await distributor.start()
    try:
        async with running(client), broker.device_client(home.device_id, password) as device:
            fall = message("fall-mqtt", position={"lat": 39.9138, "lon": 116.3636, "accuracy_m": 8, "source": "gps"})
            await device.publish(device_topic(home.device_id, ALARM), raw(fall), qos=1)
            async with asyncio.timeout(10):
                offer = await li.next()
        assert offer is not None and offer["type"] == "alarm_offer"
        assert offer["alarm"]["type"] == "fall" and offer["alarm"]["source"] == "mqtt"
        assert offer["alarm"]["location"]["latitude"] == 39.9138 and offer["elder"]["full_name"] == "赵淑珍"
    finally:
        await distributor.stop()
