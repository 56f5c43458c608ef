"""Contact cascades through the outbound engine (a scripted AMI at the transport boundary): the order of the
responders, moving on after a no-answer or a decline, the first acceptance stopping the rest and calling the
elder back, nobody accepting escalating, the agent's controls, and bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.agents.state import AgentRegistry
from callcenter.alarms.models import AlarmType
from callcenter.api.errors import Conflict, Invalid
from callcenter.audit.services import Actor
from callcenter.calls.callbacks import SosCallbacks
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.cascades.models import Cascade, CascadeCall, CascadeState
from callcenter.cascades.services import CascadeService, responder_list, responder_script, set_responders
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.ivr.flows import load_flows
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.outbound.models import JobState, OutboundAttempt, OutboundJob, OutboundPurpose
from callcenter.outbound.services import OutboundDialer
from callcenter.telephony.ami import AmiClient, AmiEvent
from tests.harness import free_tcp_port
from tests.unit.outbound.ami import ScriptedAmi

AGENT = Actor(None, "agent-1")
ANSWERED = AmiEvent({"Event": "OriginateResponse", "Response": "Success"})
# The elder's contacts, as stored (not in calling order: the cascade orders them by role, then priority).
CONTACTS = [(ContactRole.DOCTOR, "王医生", "13900000004", 1), (ContactRole.RELATIVE, "李二", "13900000002", 2),
            (ContactRole.RELATIVE, "李大", "13900000009", 1), (ContactRole.SOCIAL_WORKER, "赵社工", "13900000001", 1)]


async def _elder_with_order(db: Database) -> tuple[int, int]:
    async with db.transaction() as session:
        elder = Elder(full_name="李桂兰", phone="17700001111", address="幸福路 1 号", community="测试社区")
        elder.contacts = [Contact(role=role, name=name, phone=phone, priority=priority)
                          for role, name, phone, priority in CONTACTS]
        session.add(elder)
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="test", elder_id=elder.id)
        return elder.id, order.id


def _service(db: Database, settings: Settings, ami: ScriptedAmi) -> tuple[CascadeService, OutboundDialer]:
    dialer = OutboundDialer(db, ami, settings.replace(outbound_quiet_hours="none"))  # type: ignore[arg-type]
    return CascadeService(db, dialer, settings), dialer


async def _end_call(db: Database, dialer: OutboundDialer, number: str, key: str | None = None) -> None:
    """The person at ``number`` answered; they press ``key`` (or nothing) and the call ends."""
    async with db.transaction() as session:
        attempt, call_id = (await session.execute(
            select(OutboundAttempt.id, OutboundAttempt.call_id).join(OutboundJob)
            .where(OutboundJob.target == number).order_by(OutboundAttempt.id.desc()).limit(1))).one()
    if key is not None:
        await dialer.record_key(attempt, key)
    async with db.transaction() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        call.ended_at, call.disposition = utcnow(), Disposition.ANSWERED
    await dialer.run_round()


async def _round(dialer: OutboundDialer) -> None:
    await dialer.run_round()
    await dialer.drain()


async def _trail(db: Database, order_id: int) -> list[tuple[str, dict[str, Any]]]:
    async with db.transaction(read_only=True) as session:
        events = (await session.scalars(select(WorkOrderEvent).where(
            WorkOrderEvent.work_order_id == order_id, WorkOrderEvent.action.like("cascade%")
            | (WorkOrderEvent.action == "help_coming_call")).order_by(WorkOrderEvent.id))).all()
    return [(e.action, dict(e.details or {})) for e in events]


async def test_no_answer_then_a_decline_then_an_acceptance_stops_the_cascade_and_tells_the_elder(
        db: Database, settings: Settings) -> None:
    elder_id, order_id = await _elder_with_order(db)
    ami = ScriptedAmi()
    service, dialer = _service(db, settings, ami)
    async with db.transaction(read_only=True) as session:
        listed = await responder_list(session, elder_id, settings)
    assert [e.name for e in listed] == ["李大", "李二", "赵社工", "王医生"]  # relatives by priority, then others

    cascade = await service.begin(work_order_id=order_id, actor=AGENT)
    with pytest.raises(Conflict, match="already running"):
        await service.begin(work_order_id=order_id, actor=AGENT)
    await _round(dialer)  # 李大 does not answer (the scripted AMI's default)
    ami.outcomes.update({"13900000002": ANSWERED, "13900000001": ANSWERED, "17700001111": ANSWERED})
    await _round(dialer)  # 李二 answers …
    await _end_call(db, dialer, "13900000002", "2")  # … and declines
    await _round(dialer)  # 赵社工 answers …
    await _end_call(db, dialer, "13900000001", "1")  # … and accepts
    assert ami.dialled()[:3] == ["13900000009", "13900000002", "13900000001"]
    await _round(dialer)  # the elder is called back: help is coming
    assert ami.dialled()[3:] == ["17700001111"]
    async with db.transaction(read_only=True) as session:
        done = await session.get(Cascade, cascade.id)
        assert done is not None
        assert (done.state, done.accepted_by, done.eta_minutes) == (CascadeState.ACCEPTED, "赵社工", 30)
        calls = (await session.scalars(select(CascadeCall).where(CascadeCall.cascade_id == cascade.id)
                                       .order_by(CascadeCall.position))).all()
        help_job = await session.scalar(select(OutboundJob).where(OutboundJob.purpose == OutboundPurpose.NOTIFICATION))
    assert [(c.name, c.state.value, c.key) for c in calls] == [
        ("李大", "no_answer", None), ("李二", "declined", "2"), ("赵社工", "accepted", "1")]
    assert help_job is not None and help_job.script["prompts"] == ["outbound-help-coming", "outbound-eta-30"]
    async with db.transaction(read_only=True) as session:
        asked = await session.scalar(select(OutboundJob).where(OutboundJob.purpose == OutboundPurpose.CASCADE))
    assert asked is not None and asked.script["prompts"] == [  # what happened, as a segment naming no one
        "outbound-cascade-intro", "cascade-what-alarm", "outbound-cascade-keys"]
    trail = await _trail(db, order_id)
    assert [action for action, _ in trail] == [
        "cascade_started", "cascade_call", "cascade_call_result", "cascade_call", "cascade_call_result",
        "cascade_call", "cascade_call_result", "cascade_accepted", "help_coming_call"]
    assert trail[4][1]["key"] == "2" and trail[6][1]["key"] == "1"
    assert trail[7][1]["name"] == "赵社工" and trail[7][1]["eta_minutes"] == 30


async def test_nobody_accepting_escalates_and_the_order_goes_to_the_top(db: Database, settings: Settings) -> None:
    _, order_id = await _elder_with_order(db)
    service, dialer = _service(db, settings, ScriptedAmi())  # nobody answers
    await service.begin(work_order_id=order_id, actor=AGENT)
    for _ in range(4):
        await _round(dialer)
    trail = await _trail(db, order_id)
    assert trail[-1][0] == "cascade_exhausted" and trail[-1][1]["escalated_to"] == "supervisors"
    async with db.transaction(read_only=True) as session:
        order = await session.get(WorkOrder, order_id)
        cascade = await session.scalar(select(Cascade).where(Cascade.work_order_id == order_id))
    assert order is not None and order.priority == 1
    assert cascade is not None and cascade.state is CascadeState.EXHAUSTED


async def test_a_step_whose_wait_passes_also_calls_the_next_and_stop_cancels_them(
        db: Database, settings: Settings) -> None:
    _, order_id = await _elder_with_order(db)
    ami = ScriptedAmi()
    ami.held.update({"13900000009": asyncio.Event(), "13900000002": asyncio.Event()})  # phones keep ringing
    service, dialer = _service(db, settings, ami)
    cascade = await service.begin(work_order_id=order_id, actor=AGENT)
    await dialer.run_round()
    await asyncio.sleep(0)
    async with db.transaction() as session:
        row = await session.get(Cascade, cascade.id)
        assert row is not None
        row.step_deadline = row.started_at  # the 90 s wait is over
    await service.run_round()  # the next responder is called too
    await dialer.run_round()
    await asyncio.sleep(0)
    assert ami.dialled() == ["13900000009", "13900000002"]
    paused = await service.pause(cascade.id, actor=AGENT)
    assert paused.state is CascadeState.PAUSED
    with pytest.raises(Conflict):
        await service.pause(cascade.id, actor=AGENT)
    stopped = await service.halt(cascade.id, actor=AGENT)
    assert stopped.state is CascadeState.STOPPED
    for ringing in ami.held.values():
        ringing.set()
    await dialer.drain()
    async with db.transaction(read_only=True) as session:
        jobs = (await session.scalars(select(OutboundJob).order_by(OutboundJob.id))).all()
    assert [j.state for j in jobs][:2] == [JobState.CANCELLED, JobState.CANCELLED]
    assert [a for a, _ in await _trail(db, order_id)][-2:] == ["cascade_paused", "cascade_stopped"]


async def test_a_responder_list_refuses_a_stranger_and_a_contact_without_a_number(
        db: Database, settings: Settings) -> None:
    elder_id, _ = await _elder_with_order(db)
    async with db.transaction() as session:
        other = Elder(full_name="张三", phone="17700002222", address="x", community="y")
        other.contacts = [Contact(role=ContactRole.RELATIVE, name="外人", phone="13800000000", priority=1)]
        session.add(other)
        mine = await session.scalar(select(Contact).where(Contact.elder_id == elder_id, Contact.name == "李二"))
        assert mine is not None
        mine.phone = ""
        await session.flush()
        stranger = other.contacts[0].id
        mine_id = mine.id
    for contact_id, field, message in ((stranger, "responders[0].contact_id", "not one of this elder's"),
                                       (mine_id, "responders[0].contact_id", "no phone number")):
        with pytest.raises(Invalid, match=message) as refused:
            async with db.transaction() as session:
                await set_responders(session, elder_id, [{"contact_id": contact_id, "channel": "call",
                                                          "wait_seconds": 60, "eta_minutes": 15}], actor=AGENT)
        assert refused.value.field == field
    async with db.transaction() as session:
        lonely = Elder(full_name="孤老", phone="17700003333", address="x", community="y")
        session.add(lonely)
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="test", elder_id=lonely.id)
    service, _ = _service(db, settings, ScriptedAmi())
    with pytest.raises(Invalid, match="no contacts to call") as refused:
        await service.begin(work_order_id=order.id, actor=AGENT)
    assert refused.value.field == "elder_id"


async def test_a_missed_check_in_starts_the_cascade_in_the_escalations_transaction(
        db: Database, settings: Settings) -> None:
    _, order_id = await _elder_with_order(db)
    service, _ = _service(db, settings, ScriptedAmi())
    async with db.transaction() as session:
        await service.missed_checkin(session, 0, order_id, 1)
    async with db.transaction() as session:
        lonely = Elder(full_name="孤老", phone="17700003333", address="x", community="y")
        session.add(lonely)
        await session.flush()
        lonely_order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="test",
                                         elder_id=lonely.id)
        await service.missed_checkin(session, lonely.id, lonely_order.id, 2)  # nobody to call: said, not raised
    async with db.transaction(read_only=True) as session:
        cascade = await session.scalar(select(Cascade).where(Cascade.work_order_id == order_id))
        assert cascade is not None and cascade.reason.value == "missed_checkin"
        asked = await session.scalar(select(OutboundJob).where(OutboundJob.work_order_id == order_id))
        assert asked is not None and "cascade-what-missed-checkin" in asked.script["prompts"]
        not_started = await session.scalar(select(WorkOrderEvent).where(
            WorkOrderEvent.work_order_id == lonely_order.id, WorkOrderEvent.action == "cascade_not_started"))
    assert not_started is not None and "no contacts" in not_started.details["reason"]


async def test_an_abandoned_sos_starts_the_cascade_beside_its_call_back(db: Database, settings: Settings) -> None:
    elder_id, _ = await _elder_with_order(db)
    async with db.transaction() as session:
        device = Device(kind=DeviceKind.ONE_TOUCH, sip_username="dev-abandoned", sip_ha1="0" * 32, elder_id=elder_id)
        session.add(device)
        await session.flush()
        call = Call(linkedid="sos-abandoned-1", kind=CallKind.SOS, device_id=device.id, elder_id=elder_id,
                    started_at=utcnow(), ended_at=utcnow(), disposition=Disposition.ABANDONED)
        session.add(call)
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr", call_id=call.id,
                                  device_id=device.id, elder_id=elder_id)
        order_id = order.id
    callbacks = SosCallbacks(db, AmiClient("127.0.0.1", free_tcp_port(), "u", "s"), AgentRegistry())
    service, _ = _service(db, settings, ScriptedAmi())
    callbacks.on_abandoned(service.abandoned_sos)
    await callbacks.call_ended(call)
    await callbacks.call_ended(call)  # reported again (the CDR catch-up): still one cascade
    trail = [action for action, _ in await _trail(db, order_id)]
    assert trail[:2] == ["cascade_started", "cascade_call"] and trail.count("cascade_started") == 1
    off, _ = _service(db, settings.replace(cascade_on_abandoned_sos="off"), ScriptedAmi())
    async with db.transaction() as session:
        await off.abandoned_sos(session, order_id, call)  # off: nothing more
    assert [action for action, _ in await _trail(db, order_id)].count("cascade_started") == 1


def test_every_alarm_type_and_reason_has_its_what_happened_segment(settings: Settings) -> None:
    prompts = load_flows(settings.ivr_flows_dir).prompts
    for what in [*(t.value for t in AlarmType), "unanswered_sos", "missed_checkin", "alarm"]:
        segment = responder_script(what)["prompts"][1]
        assert set(prompts[segment]) == {"zh-CN", "en"}, segment


async def test_a_slow_call_ending_after_its_wait_does_not_skip_the_responder_being_called(
        db: Database, settings: Settings) -> None:
    _, order_id = await _elder_with_order(db)
    ami = ScriptedAmi()
    ami.held.update({"13900000009": asyncio.Event(), "13900000002": asyncio.Event()})
    service, dialer = _service(db, settings, ami)
    cascade = await service.begin(work_order_id=order_id, actor=AGENT)
    await dialer.run_round()
    await asyncio.sleep(0)
    async with db.transaction() as session:
        row = await session.get(Cascade, cascade.id)
        assert row is not None
        row.step_deadline = row.started_at  # 李大's wait is over: 李二 is called too
    await service.run_round()
    await dialer.run_round()
    await asyncio.sleep(0)
    ami.held["13900000009"].set()  # 李大's phone stops ringing, unanswered, while 李二's still rings
    for _ in range(200):  # its Originate's answer handled (at most 2 s)
        if dialer.dialling == 1:
            break
        await asyncio.sleep(0.01)
    await dialer.run_round()
    await asyncio.sleep(0)
    assert ami.dialled() == ["13900000009", "13900000002"], "赵社工 waits for 李二's call or wait"
    ami.held["13900000002"].set()
    await dialer.drain()
    await dialer.run_round()
    await asyncio.sleep(0)
    assert ami.dialled()[2] == "13900000001"
    ami.outcomes["13900000001"] = ANSWERED
    for ringing in ami.held.values():
        ringing.set()
    await service.halt(cascade.id, actor=AGENT)
    await dialer.drain()
