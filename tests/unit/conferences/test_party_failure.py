"""A dialled party that cannot be reached shows why on the roster and the order's trail, from the Originate's
answer, and the Originate is the one the builder makes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.conferences.models import PartyRole, PartyState
from callcenter.conferences.services import ConferenceService, party_request
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.telephony.ami import AmiEvent, AmiNotConnected
from tests.unit.conferences.test_refusals import _trail
from tests.unit.conferences.test_start_failure import _answered_sos


class _Asterisk:
    """Moves the two (Setvar, Redirect) and answers the party's Originate with ``originated`` (or raises it)."""

    connected = True

    def __init__(self, originated: AmiEvent | Exception) -> None:
        self.originated = originated
        self.originates: list[dict[str, Any]] = []

    async def send_action(self, action: dict[str, Any], timeout: float | None = None, **_: Any) -> AmiEvent:
        if action["Action"] != "Originate":
            return AmiEvent({"Response": "Success"})
        self.originates.append(action)
        if isinstance(self.originated, Exception):
            raise self.originated
        return self.originated


@pytest.mark.parametrize(("originated", "state", "reason"), [
    (AmiEvent({"Response": "Failure", "Reason": "5"}), PartyState.BUSY, "busy"),
    (AmiEvent({"Response": "Failure", "Reason": "3"}), PartyState.NO_ANSWER, "no answer"),
    (AmiEvent({"Response": "Failure", "Reason": "8"}), PartyState.FAILED, "congestion"),
    (AmiEvent({"Response": "Failure", "Reason": "4"}), PartyState.FAILED, "4"),
    (AmiEvent({"Response": "Error", "Message": "Originate failed"}), PartyState.FAILED, "Originate failed"),
    (AmiNotConnected("AMI is not connected; Originate was not sent"), PartyState.FAILED,
     "error: AMI is not connected; Originate was not sent"),
])
async def test_an_unreached_party_shows_why(db: Database, originated: AmiEvent | Exception, state: PartyState,
                                            reason: str) -> None:
    call_id, order_id = await _answered_sos(db)
    settings = Settings.from_env({"CC_TRUNK_URI": "sip:127.0.0.1:5099"})
    asterisk = _Asterisk(originated)
    service = ConferenceService(db, asterisk, settings)  # type: ignore[arg-type]
    party = await service.add_party(call_id, PartyRole.EMERGENCY, contact_id=None, number=None, actor_id=None)
    async with asyncio.timeout(5):
        await asyncio.gather(*service._originations)
    assert party.uniqueid is not None
    assert asterisk.originates == [party_request(number=settings.emergency_number, room=party.room,
                                                 channel_id=party.uniqueid, settings=settings).action()]
    async with db.transaction() as session:
        [_, _, dialled] = await service.roster(session, call_id)
    assert (dialled.state, dialled.failure_reason) == (state, reason)
    assert (await _trail(db, order_id))[-1] == "conference_party_failed"
    # The dial is in the audit log with its number and why it was allowed (dial_policy), reached or not.
    async with db.transaction() as session:
        dials = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "dial.outbound"))).all()
    assert [(d.target_id, d.details) for d in dials] == [
        (str(call_id), {"purpose": "conference", "number": "120", "basis": "service"})]
