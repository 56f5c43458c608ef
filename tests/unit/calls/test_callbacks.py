"""Abandoned SOS callbacks survive a restart of the platform, and are dropped once they would help nobody."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from callcenter.agents.state import AgentRegistry
from callcenter.audit.models import AuditEntry
from callcenter.calls.callbacks import SosCallbacks
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from callcenter.orders.services import raise_order
from callcenter.telephony.ami import AmiClient, AmiEvent
from callcenter.users.models import Role, User
from tests.harness import free_tcp_port


async def _abandoned_sos(db: Database, linkedid: str) -> int:
    async with db.transaction() as session:
        device = Device(kind=DeviceKind.ONE_TOUCH, sip_username=f"dev-{linkedid}", sip_ha1="0" * 32)
        session.add(device)
        await session.flush()
        call = Call(linkedid=linkedid, kind=CallKind.SOS, device_id=device.id, started_at=utcnow(),
                    ended_at=utcnow(), disposition=Disposition.ABANDONED)
        session.add(call)
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr", call_id=call.id,
                                  device_id=device.id)
        return order.id


async def test_abandoned_sos_found_after_restart_is_pending_until_called_back(db: Database) -> None:
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started: the loop cannot originate
    first = SosCallbacks(db, ami, AgentRegistry())
    await _abandoned_sos(db, "100.1")
    async with db.transaction() as session:
        call = await session.scalar(select(Call).where(Call.linkedid == "100.1"))
    assert call is not None
    await first.call_ended(call)
    assert [p.target for p in first.pending] == ["PJSIP/dev-100.1"]

    # The platform restarts: a fresh instance finds the same callback still owed.
    restarted = SosCallbacks(db, ami, AgentRegistry())
    assert await restarted.load_pending() == 1
    order_id = restarted.pending[0].order_id

    # Once a callback has started, a later restart owes nothing.
    async with db.transaction() as session:
        session.add(WorkOrderEvent(work_order_id=order_id, actor_label="system", action="sos_callback_started"))
    assert await SosCallbacks(db, ami, AgentRegistry()).load_pending() == 0


async def _owed_callback(db: Database, linkedid: str) -> tuple[SosCallbacks, Call, int]:
    callbacks = SosCallbacks(db, AmiClient("127.0.0.1", free_tcp_port(), "u", "s"), AgentRegistry())
    order_id = await _abandoned_sos(db, linkedid)
    async with db.transaction() as session:
        call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
    assert call is not None
    await callbacks.call_ended(call)
    assert len(callbacks.pending) == 1
    return callbacks, call, order_id


async def _trail(db: Database, order_id: int) -> list[tuple[str, object]]:
    async with db.transaction() as session:
        events = (await session.scalars(select(WorkOrderEvent).where(
            WorkOrderEvent.work_order_id == order_id).order_by(WorkOrderEvent.id))).all()
        return [(e.action, (e.details or {}).get("reason")) for e in events]


async def test_a_callback_whose_order_was_closed_meanwhile_is_dropped_not_dialled(db: Database) -> None:
    callbacks, _, order_id = await _owed_callback(db, "100.2")
    async with db.transaction() as session:
        order = await session.get(WorkOrder, order_id)
        assert order is not None
        order.status = WorkOrderStatus.CLOSED
    await callbacks._attempt_all()  # no agent is free: the check comes first all the same
    assert callbacks.pending == []
    assert (await _trail(db, order_id))[-1] == ("sos_callback_cancelled", "the order is closed")


async def test_a_callback_is_dropped_once_an_agent_answered_a_newer_call_of_the_same_device(db: Database) -> None:
    callbacks, abandoned, order_id = await _owed_callback(db, "100.3")
    await callbacks._attempt_all()
    assert len(callbacks.pending) == 1  # still owed: nothing newer
    async with db.transaction() as session:
        agent = User(username="agent-cb", password_hash="x", role=Role.AGENT, extension="8111")
        session.add(agent)
        await session.flush()
        now = utcnow()
        session.add(Call(linkedid="100.4", kind=CallKind.SOS, device_id=abandoned.device_id, started_at=now,
                         answered_at=now, agent_id=agent.id))
    await callbacks._attempt_all()
    assert callbacks.pending == []
    assert (await _trail(db, order_id))[-1] == ("sos_callback_cancelled",
                                               "the elder was reached on a newer call (100.4)")


async def _abandoned_actions(db: Database, order_id: int) -> list[str]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(WorkOrderEvent.action).where(
            WorkOrderEvent.work_order_id == order_id, WorkOrderEvent.action == "sos_abandoned"))).all())


async def test_an_sos_that_ended_unanswered_just_before_a_kill_is_owed_its_callback_on_start(db: Database) -> None:
    """The hang-up was stored, then the platform was killed before the callback was owed: the start-up scan owes
    it, once, however many times the platform starts."""
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")
    order_id = await _abandoned_sos(db, "300.1")
    restarted = SosCallbacks(db, ami, AgentRegistry())
    assert await restarted.load_pending() == 1
    assert [p.target for p in restarted.pending] == ["PJSIP/dev-300.1"]
    assert await SosCallbacks(db, ami, AgentRegistry()).load_pending() == 1
    assert await _abandoned_actions(db, order_id) == ["sos_abandoned"]


async def test_the_same_abandoned_sos_reported_twice_is_owed_one_callback(db: Database) -> None:
    """The live hang-up and the CDR catch-up may both report the call."""
    callbacks = SosCallbacks(db, AmiClient("127.0.0.1", free_tcp_port(), "u", "s"), AgentRegistry())
    order_id = await _abandoned_sos(db, "300.2")
    async with db.transaction() as session:
        call = await session.scalar(select(Call).where(Call.linkedid == "300.2"))
    assert call is not None
    await callbacks.call_ended(call)
    await callbacks.call_ended(call)
    assert len(callbacks.pending) == 1
    assert await _abandoned_actions(db, order_id) == ["sos_abandoned"]


async def _dialled_when_the_platform_died(db: Database, linkedid: str) -> tuple[int, str]:
    """An abandoned SOS whose callback Originate was on its way (trail: dialling, no outcome) when the platform
    was killed."""
    order_id = await _abandoned_sos(db, linkedid)
    channel_id = f"ccb{order_id}-1-abc123"
    async with db.transaction() as session:
        call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
        assert call is not None
        session.add(WorkOrderEvent(work_order_id=order_id, actor_label="system", action="sos_abandoned",
                                   call_id=call.id, details={"callback_target": f"PJSIP/dev-{linkedid}"}))
        session.add(WorkOrderEvent(work_order_id=order_id, actor_label="system", action="sos_callback_dialling",
                                   call_id=call.id, details={"channel_id": channel_id, "agent": "agent01",
                                                             "attempt": 1}))
    return order_id, channel_id


async def _callback_call(db: Database, channel_id: str, *, ended: bool, agent_answered: bool) -> None:
    """What the reconciler logs of the callback's own channel once the platform is back."""
    async with db.transaction() as session:
        call = Call(linkedid=channel_id, kind=CallKind.OTHER, started_at=utcnow(),
                    ended_at=utcnow() if ended else None)
        session.add(call)
        await session.flush()
        session.add(CallLeg(call_id=call.id, uniqueid=channel_id, channel="PJSIP/8101-00000009",
                            started_at=utcnow(), answered_at=utcnow() if agent_answered else None))


async def _trail_of(db: Database, order_id: int) -> list[str]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(WorkOrderEvent.action).where(
            WorkOrderEvent.work_order_id == order_id).order_by(WorkOrderEvent.id))).all())


async def test_a_callback_in_flight_at_a_kill_is_settled_from_the_call_log_not_dialled_again(db: Database) -> None:
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")
    answered_order, answered_channel = await _dialled_when_the_platform_died(db, "500.1")
    unanswered_order, unanswered_channel = await _dialled_when_the_platform_died(db, "500.2")
    live_order, live_channel = await _dialled_when_the_platform_died(db, "500.3")
    restarted = SosCallbacks(db, ami, AgentRegistry())
    assert await restarted.load_pending() == 3
    assert restarted.pending == []  # none of them may simply be dialled again
    assert {u.channel_id for u in restarted.uncertain} == {answered_channel, unanswered_channel, live_channel}

    await _callback_call(db, answered_channel, ended=True, agent_answered=True)
    await _callback_call(db, unanswered_channel, ended=True, agent_answered=False)
    await _callback_call(db, live_channel, ended=False, agent_answered=True)  # the agent still talking
    await restarted.caught_up()
    assert (await _trail_of(db, answered_order))[-1] == "sos_callback_started"
    assert (await _trail_of(db, unanswered_order))[-1] == "sos_callback_attempt_failed"
    assert [p.order_id for p in restarted.pending] == [unanswered_order]  # only that one is owed again
    assert [u.channel_id for u in restarted.uncertain] == [live_channel]
    assert (await _trail_of(db, live_order))[-1] == "sos_callback_dialling"


class _AgentAnswers:
    """Asterisk connected, the agent's phone answering the callback's Originate."""

    connected = True

    def __init__(self) -> None:
        self.originates: list[dict[str, Any]] = []

    async def send_action(self, action: dict[str, Any], timeout: float | None = None, **_: Any) -> AmiEvent:
        self.originates.append(action)
        return AmiEvent({"Response": "Success"})


async def test_a_callback_is_audited_as_an_outbound_dial_of_the_elders_device(db: Database) -> None:
    asterisk, agents = _AgentAnswers(), AgentRegistry()
    await agents.handle(AmiEvent({"Event": "QueueMemberAdded", "Queue": "emergency", "MemberName": "agent-cb",
                                  "Interface": "PJSIP/8111", "Paused": "0", "Status": "1"}))
    callbacks = SosCallbacks(db, asterisk, agents)  # type: ignore[arg-type]
    order_id = await _abandoned_sos(db, "600.1")
    async with db.transaction() as session:
        call = await session.scalar(select(Call).where(Call.linkedid == "600.1"))
    assert call is not None
    await callbacks.call_ended(call)
    await callbacks._attempt_all()
    async with asyncio.timeout(5):
        await asyncio.gather(*callbacks._attempts)
    assert [a["Channel"] for a in asterisk.originates] == ["PJSIP/8111"]
    assert (await _trail_of(db, order_id))[-1] == "sos_callback_started"
    async with db.transaction(read_only=True) as session:
        dials = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "dial.outbound"))).all()
    assert [(d.actor_label, d.target_type, d.target_id, d.details) for d in dials] == [
        ("system", "call", str(call.id),
         {"purpose": "sos_callback", "number": "PJSIP/dev-600.1", "basis": "elder", "order_id": order_id})]
