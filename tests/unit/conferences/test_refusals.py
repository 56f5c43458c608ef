"""What the conference refuses, it refuses before anything changes: no bridge, no recording, no trail entry, no
dial. A closed conference (the call ended, the conference ended, or the elder gone) dials nobody."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callcenter.api.errors import Conflict, Invalid
from callcenter.calls.models import Call, CallLeg
from callcenter.conferences.models import ConferenceParticipant, PartyRole, PartyState
from callcenter.conferences.services import ConferenceService, room_for, why_closed
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.orders.models import WorkOrderEvent
from callcenter.telephony.ami import AmiClient
from tests.harness import free_tcp_port
from tests.unit.conferences.test_start_failure import _answered_sos


def _service(db: Database) -> ConferenceService:
    # An AMI client that was never started: any action that reached Asterisk would fail with Unavailable, so a
    # Conflict or Invalid here proves the request was refused before the first side effect.
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")
    return ConferenceService(db, ami, Settings.from_env({"CC_TRUNK_URI": "sip:127.0.0.1:5099"}))


async def _trail(db: Database, order_id: int) -> list[str]:
    async with db.transaction() as session:
        return list((await session.scalars(select(WorkOrderEvent.action).where(
            WorkOrderEvent.work_order_id == order_id).order_by(WorkOrderEvent.id))).all())


async def _with_elder(db: Database, call_id: int) -> int:
    """Give the call an elder with one relative and no doctor on file; the relative's contact id."""
    async with db.transaction() as session:
        elder = Elder(full_name="测试", phone="17700000102", address="测试路 1 号")
        elder.contacts = [Contact(role=ContactRole.RELATIVE, name="家属", phone="17700000103", priority=1)]
        session.add(elder)
        await session.flush()
        call = await session.get(Call, call_id)
        assert call is not None
        call.elder_id = elder.id
        return elder.contacts[0].id


@pytest.mark.parametrize(("role", "contact", "field"), [
    (PartyRole.RELATIVE, 999999999, "contact_id"),   # no such contact
    (PartyRole.DOCTOR, None, "number"),              # no doctor on file
    (PartyRole.DOCTOR, "relative", "role"),          # a relative's contact asked for as the doctor
])
async def test_a_refused_add_leaves_a_plain_two_party_call(db: Database, role: PartyRole, contact: object,
                                                          field: str) -> None:
    call_id, order_id = await _answered_sos(db)
    relative_id = await _with_elder(db, call_id)
    service = _service(db)
    with pytest.raises(Invalid) as refused:
        await service.add_party(call_id, role, contact_id=relative_id if contact == "relative" else contact,
                                number=None, actor_id=None)
    assert refused.value.field == field
    async with db.transaction() as session:
        assert await service.roster(session, call_id) == []
    assert await _trail(db, order_id) == ["created"]


async def _end_call(db: Database, call_id: int) -> None:
    async with db.transaction() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        call.ended_at = utcnow()
        for leg in (await session.scalars(select(CallLeg).where(CallLeg.call_id == call_id))).all():
            leg.ended_at = call.ended_at


async def _conference(db: Database, call_id: int, *, elder: PartyState, elder_left: bool = False) -> int:
    """A conference as the events leave it: the elder (in ``elder`` state), the agent and 120 joined; 120's id."""
    async with db.transaction() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        now = utcnow()
        rows = [ConferenceParticipant(call_id=call_id, room=room_for(call), role=PartyRole.ELDER, uniqueid="200.1",
                                      channel="PJSIP/dev-1-00000001", state=elder,
                                      left_at=now if elder_left or elder is PartyState.LEFT else None),
                ConferenceParticipant(call_id=call_id, room=room_for(call), role=PartyRole.AGENT, uniqueid="200.2",
                                      channel="PJSIP/8109-00000002", state=PartyState.JOINED),
                ConferenceParticipant(call_id=call_id, room=room_for(call), role=PartyRole.EMERGENCY,
                                      uniqueid="ccp3-00", channel="PJSIP/trunk-00000003", number="120",
                                      state=PartyState.JOINED)]
        session.add_all(rows)
        await session.flush()
        return rows[2].id


@pytest.mark.parametrize("closed_by", ["call_ended", "conference_ended", "elder_hung_up"])
async def test_a_closed_conference_dials_mutes_and_removes_nobody(db: Database, closed_by: str) -> None:
    call_id, order_id = await _answered_sos(db)
    relative_id = await _with_elder(db, call_id)
    party_id = await _conference(db, call_id, elder=PartyState.LEFT if closed_by == "elder_hung_up"
                                 else PartyState.JOINED, elder_left=closed_by == "conference_ended")
    if closed_by == "call_ended":
        await _end_call(db, call_id)
    service = _service(db)
    attempts = [
        lambda: service.add_party(call_id, PartyRole.EMERGENCY, contact_id=None, number=None, actor_id=None),
        lambda: service.add_party(call_id, PartyRole.RELATIVE, contact_id=relative_id, number=None, actor_id=None),
        lambda: service.redial(call_id, party_id),
        lambda: service.mute(call_id, party_id),
        lambda: service.unmute(call_id, party_id),
        lambda: service.remove(call_id, party_id),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict) as refused:
            await attempt()
        assert refused.value.code == "conference_closed" and refused.value.field == "call_id"
        assert ("call has ended" if closed_by == "call_ended" else "conference has ended") in refused.value.message
    async with db.transaction() as session:
        roster = await service.roster(session, call_id)
    assert [(p.role, p.state) for p in roster][1:] == [(PartyRole.AGENT, PartyState.JOINED),
                                                       (PartyRole.EMERGENCY, PartyState.JOINED)]
    assert await _trail(db, order_id) == ["created"]


async def test_the_elder_moving_in_is_still_a_live_conference() -> None:
    """Between the Redirect and the elder's ConfbridgeJoin the elder's row is ringing: parties may be added."""
    call = Call(linkedid="1.1", started_at=utcnow())
    elder = ConferenceParticipant(role=PartyRole.ELDER, state=PartyState.RINGING)
    assert why_closed(call, []) is None
    assert why_closed(call, [elder]) is None
    elder.state = PartyState.JOINED
    assert why_closed(call, [elder]) is None


async def test_ending_a_conference_nobody_is_in_is_refused(db: Database) -> None:
    call_id, _ = await _answered_sos(db)
    with pytest.raises(Conflict) as refused:
        await _service(db).end(call_id)
    assert refused.value.code == "conference_closed"
