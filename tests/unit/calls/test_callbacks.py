"""Abandoned SOS callbacks survive a restart of the platform."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.agents.state import AgentRegistry
from callcenter.calls.callbacks import SosCallbacks
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.orders.models import WorkOrderEvent, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.telephony.ami import AmiClient
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
