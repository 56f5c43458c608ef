"""The call log stays right whatever order AMI events and AGI requests arrive in."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from callcenter.calls import services
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition, IdentifiedBy
from callcenter.db.session import Database
from callcenter.devices.services import Identification

T0 = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def _call(db: Database, linkedid: str) -> Call:
    async with db.transaction() as session:
        call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
        assert call is not None
        return call


async def test_answered_call_in_event_order(db: Database) -> None:
    async with db.transaction() as session:
        await services.channel_created(session, uniqueid="1.1", linkedid="1.1", channel="PJSIP/d-1",
                                       caller_number="17700000001", caller_name="", callee_number="sos", at=at(0))
    async with db.transaction() as session:
        # Asterisk answering the caller (prompt, hold music) is not the call being answered.
        await services.channel_answered(session, uniqueid="1.1", linkedid="1.1", channel="PJSIP/d-1", at=at(0.1))
        await services.channel_created(session, uniqueid="1.2", linkedid="1.1", channel="PJSIP/8001-2",
                                       caller_number="", caller_name="", callee_number="8001", at=at(0.5))
    assert (await _call(db, "1.1")).answered_at is None
    async with db.transaction() as session:
        await services.channel_answered(session, uniqueid="1.2", linkedid="1.1", channel="PJSIP/8001-2", at=at(1))
    async with db.transaction() as session:
        for uniqueid in ("1.2", "1.1"):
            await services.channel_hung_up(session, uniqueid=uniqueid, linkedid="1.1", channel="x", cause=16,
                                           cause_text="Normal Clearing", at=at(30))
    call = await _call(db, "1.1")
    assert (call.started_at, call.answered_at, call.ended_at) == (at(0), at(1), at(30))
    assert call.disposition is Disposition.ANSWERED
    assert call.caller_number == "17700000001"
    assert call.callee_number == "sos"


async def test_agi_identity_before_the_ami_event_still_makes_one_call(db: Database) -> None:
    who = Identification(None, None, IdentifiedBy.NONE)
    async with db.transaction() as session:
        await services.attach_identity(session, linkedid="2.1", kind=CallKind.HOTLINE, identification=who,
                                       caller_number="8001", callee_number="12349")
    async with db.transaction() as session:
        await services.channel_created(session, uniqueid="2.1", linkedid="2.1", channel="PJSIP/8001-1",
                                       caller_number="8001", caller_name="", callee_number="12349", at=at(0))
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Call)) == 1
    call = await _call(db, "2.1")
    assert call.kind is CallKind.HOTLINE
    assert call.started_at == at(0)


async def test_hangup_before_newchannel_is_not_lost(db: Database) -> None:
    async with db.transaction() as session:
        await services.channel_hung_up(session, uniqueid="3.1", linkedid="3.1", channel="PJSIP/d-3", cause=16,
                                       cause_text=None, at=at(5))
    call = await _call(db, "3.1")
    assert call.ended_at == at(5)
    assert call.disposition is Disposition.ABANDONED


async def test_call_ends_only_when_its_last_leg_ends(db: Database) -> None:
    for uniqueid, seconds in (("4.1", 0), ("4.2", 1)):
        async with db.transaction() as session:
            await services.channel_created(session, uniqueid=uniqueid, linkedid="4.1", channel=f"PJSIP/x-{uniqueid}",
                                           caller_number="1", caller_name="", callee_number="2", at=at(seconds))
    async with db.transaction() as session:
        await services.channel_answered(session, uniqueid="4.2", linkedid="4.1", channel="PJSIP/x-4.2", at=at(3))
    async with db.transaction() as session:
        await services.channel_hung_up(session, uniqueid="4.2", linkedid="4.1", channel="PJSIP/x-4.2", cause=16,
                                       cause_text=None, at=at(10))
    assert (await _call(db, "4.1")).ended_at is None
    async with db.transaction() as session:
        await services.channel_hung_up(session, uniqueid="4.1", linkedid="4.1", channel="PJSIP/x-4.1", cause=16,
                                       cause_text=None, at=at(11))
    call = await _call(db, "4.1")
    assert call.ended_at == at(11)
    assert call.disposition is Disposition.ANSWERED
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(CallLeg).where(CallLeg.call_id == call.id)) == 2


@pytest.mark.parametrize(
    ("answered", "cause", "expected"),
    [
        (True, 16, Disposition.ANSWERED),
        (False, 17, Disposition.BUSY),
        (False, 19, Disposition.NO_ANSWER),
        (False, 16, Disposition.ABANDONED),
        (False, 34, Disposition.FAILED),
    ],
)
def test_final_disposition(answered: bool, cause: int, expected: Disposition) -> None:
    assert services.final_disposition(answered, cause) is expected


@pytest.mark.parametrize(("extension", "kind"), [("sos", CallKind.SOS), ("12349", CallKind.HOTLINE),
                                                 ("8001", CallKind.OTHER)])
def test_call_kind_for_extension(extension: str, kind: CallKind) -> None:
    assert services.call_kind_for_extension(extension) is kind


async def test_agent_connect_records_queue_agent_and_wait(db: Database) -> None:
    async with db.transaction() as session:
        await services.channel_created(session, uniqueid="5.1", linkedid="5.1", channel="PJSIP/d-5",
                                       caller_number="1", caller_name="", callee_number="sos", at=at(0))
        await services.entered_queue(session, linkedid="5.1", queue="emergency", at=at(1))
        await services.agent_connected(session, linkedid="5.1", queue="emergency", agent_id=None, hold_seconds=4,
                                       at=at(5))
    call = await _call(db, "5.1")
    assert (call.queue, call.queue_wait_seconds, call.answered_at) == ("emergency", 4, at(5))


async def test_a_call_in_the_emergency_queue_always_has_its_emergency_order(db: Database) -> None:
    """The sos AGI failed (say, the database was locked): the QueueCallerJoin safety net raises the order, once."""
    from panoramisk.message import Message

    from callcenter.calls.events import CallEventRecorder
    from callcenter.orders.models import WorkOrder, WorkOrderKind

    recorder = CallEventRecorder(db)
    base = {"Uniqueid": "9.1", "Linkedid": "9.1", "Channel": "PJSIP/dev-9-00000001", "CallerIDNum": "17700000009"}
    await recorder.handle(Message({"Event": "Newchannel", "Exten": "sos", **base}))
    for _ in range(2):  # a second join (overflow back to the queue) raises nothing more
        await recorder.handle(Message({"Event": "QueueCallerJoin", "Queue": "emergency", **base}))
    async with db.transaction() as session:
        orders = (await session.scalars(select(WorkOrder).where(WorkOrder.kind == WorkOrderKind.EMERGENCY))).all()
        call = await session.scalar(select(Call).where(Call.linkedid == "9.1"))
    assert len(orders) == 1 and call is not None
    assert orders[0].call_id == call.id
    assert call.kind is CallKind.SOS
