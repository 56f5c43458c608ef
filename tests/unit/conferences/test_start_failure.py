"""Starting a conference when Asterisk cannot move the two: nothing half-done is left behind."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callcenter.api.errors import Unavailable
from callcenter.calls.models import Call, CallKind, CallLeg
from callcenter.conferences.models import PartyRole
from callcenter.conferences.services import ConferenceService
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrderEvent, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.telephony.ami import AmiClient
from callcenter.users.models import Role, User
from tests.harness import free_tcp_port


async def _answered_sos(db: Database) -> tuple[int, int]:
    async with db.transaction() as session:
        agent = User(username="agent-c", display_name="坐席", password_hash="x", role=Role.AGENT, extension="8109")
        session.add(agent)
        await session.flush()
        now = utcnow()
        call = Call(linkedid="200.1", kind=CallKind.SOS, caller_number="17700000101", agent_id=agent.id,
                    started_at=now, answered_at=now)
        session.add(call)
        await session.flush()
        session.add_all([
            CallLeg(call_id=call.id, uniqueid="200.1", channel="PJSIP/dev-1-00000001", started_at=now, answered_at=now),
            CallLeg(call_id=call.id, uniqueid="200.2", channel="PJSIP/8109-00000002", started_at=now, answered_at=now),
        ])
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr", call_id=call.id)
        return call.id, order.id


async def test_a_failed_move_leaves_no_roster_so_the_next_try_moves_them_again(db: Database) -> None:
    call_id, order_id = await _answered_sos(db)
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started: every action fails
    service = ConferenceService(db, ami, Settings.from_env({"CC_TRUNK_URI": "sip:127.0.0.1:5099"}))
    for _ in range(2):  # the second try must attempt the move again, not dial into an empty room
        with pytest.raises(Unavailable):
            await service.add_party(call_id, PartyRole.EMERGENCY, contact_id=None, number=None, actor_id=None)
        async with db.transaction() as session:
            assert await service.roster(session, call_id) == []
    async with db.transaction() as session:
        actions = (await session.scalars(select(WorkOrderEvent.action).where(
            WorkOrderEvent.work_order_id == order_id).order_by(WorkOrderEvent.id))).all()
    assert list(actions) == ["created"] + ["conference_started", "conference_start_failed"] * 2
