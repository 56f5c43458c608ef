"""The outbound dialling policy: a typed conference number is dialled only when it is the elder's contact, a
service number or allowed by a supervisor; refused before anything changes otherwise, re-dials included; every
dial audited."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.api.errors import Forbidden
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor
from callcenter.conferences.models import ConferenceParticipant, PartyRole, PartyState
from callcenter.conferences.services import ConferenceService
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.models import AllowedNumber
from callcenter.dial_policy.services import DialBasis, dial_basis, withdraw_number
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.telephony.ami import AmiEvent
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.conferences.test_party_failure import _Asterisk
from tests.unit.conferences.test_refusals import _service, _trail, _with_elder
from tests.unit.conferences.test_start_failure import _answered_sos

SERVICE = Settings.from_env({}).service_number_set


async def _elder_with_contact(db: Database) -> int:
    async with db.transaction() as session:
        elder = Elder(full_name="测试", phone="17700000102", address="测试路 1 号")
        elder.contacts = [Contact(role=ContactRole.DOCTOR, name="家庭医生", phone="17700000104", priority=1)]
        session.add(elder)
        await session.flush()
        return elder.id


async def test_contacts_service_numbers_and_allowed_numbers_pass_and_nothing_else(db: Database) -> None:
    elder_id = await _elder_with_contact(db)
    now = utcnow()
    async with db.transaction() as session:
        session.add_all([AllowedNumber(number="02112345678", label="居委会", reason="值班电话"),
                         AllowedNumber(number="02187654321", label="旧号码", reason="已过期",
                                       expires_at=now - dt.timedelta(minutes=1))])
    async with db.transaction() as session:
        for number, basis in (("17700000104", DialBasis.CONTACT), ("110", DialBasis.SERVICE),
                              ("120", DialBasis.SERVICE), ("02112345678", DialBasis.ALLOWED)):
            assert await dial_basis(session, number, elder_id=elder_id, service_numbers=SERVICE, now=now) is basis
        for number, elder in (("13800138000", elder_id), ("02187654321", elder_id), ("17700000104", None)):
            with pytest.raises(Forbidden) as refused:
                await dial_basis(session, number, elder_id=elder, service_numbers=SERVICE, now=now)
            assert refused.value.field == "number" and refused.value.code == "number_not_allowed"


async def test_a_typed_number_nobody_allowed_is_refused_before_the_conference_starts(db: Database) -> None:
    call_id, order_id = await _answered_sos(db)
    service = _service(db)
    with pytest.raises(Forbidden) as refused:
        await service.add_party(call_id, PartyRole.RELATIVE, contact_id=None, number="13800138000", actor_id=None)
    assert "supervisor" in refused.value.message
    async with db.transaction() as session:
        assert await service.roster(session, call_id) == []
    assert await _trail(db, order_id) == ["created"]


async def test_supervisors_allow_and_withdraw_numbers_and_it_is_audited(api: Api) -> None:
    status, allowed = await api.request("POST", "/api/v1/allowed-numbers", role=Role.SUPERVISOR, json={
        "number": "+862112345678", "label": "社区居委会值班电话", "reason": "夜间独居老人求助时联系"})
    assert status == 201 and allowed["number"] == "862112345678"
    status, body = await api.request("POST", "/api/v1/allowed-numbers", role=Role.SUPERVISOR, json={
        "number": "862112345678", "label": "x", "reason": "y"})
    assert status == 409 and body["error"]["field"] == "number"
    for bad, field in (({"number": "12-34", "label": "x", "reason": "y"}, "number"),
                       ({"number": "12345", "label": "", "reason": "y"}, "label"),
                       ({"number": "12345", "label": "x"}, "reason")):
        status, body = await api.request("POST", "/api/v1/allowed-numbers", role=Role.SUPERVISOR, json=bad)
        assert status == 422 and body["error"]["field"] == field, body
    status, listed = await api.request("GET", "/api/v1/allowed-numbers", role=Role.AGENT)
    assert status == 200 and [a["number"] for a in listed["items"]] == ["862112345678"]
    assert (await api.request("POST", "/api/v1/allowed-numbers", role=Role.AGENT, json={
        "number": "12345", "label": "x", "reason": "y"}))[0] == 403
    status, _ = await api.request("DELETE", f"/api/v1/allowed-numbers/{allowed['id']}", role=Role.SUPERVISOR)
    assert status == 200
    assert (await api.request("DELETE", f"/api/v1/allowed-numbers/{allowed['id']}", role=Role.SUPERVISOR))[0] == 404
    async with api.db.transaction() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("dial.%")).order_by(AuditEntry.id))).all()
    assert list(actions) == ["dial.number_allowed", "dial.number_withdrawn"]


async def _dials(db: Database) -> list[tuple[str | None, dict[str, Any]]]:
    """The ``dial.outbound`` audit entries, oldest first: (call id, details)."""
    async with db.transaction() as session:
        entries = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == "dial.outbound").order_by(AuditEntry.id))).all()
        return [(entry.target_id, entry.details) for entry in entries]


async def _busy_party(db: Database, call_id: int, *, contact_id: int | None = None,
                      number: str | None = None) -> tuple[ConferenceService, _Asterisk, ConferenceParticipant]:
    """A relative dialled into ``call_id``'s conference who was busy: the party an agent would re-dial."""
    asterisk = _Asterisk(AmiEvent({"Response": "Failure", "Reason": "5"}))
    settings = Settings.from_env({"CC_TRUNK_URI": "sip:127.0.0.1:5099"})
    service = ConferenceService(db, asterisk, settings)  # type: ignore[arg-type]
    party = await service.add_party(call_id, PartyRole.RELATIVE, contact_id=contact_id, number=number,
                                    actor_id=None)
    await _originations_done(service)
    async with db.transaction() as session:
        busy = await session.get(ConferenceParticipant, party.id)
        assert busy is not None and busy.state is PartyState.BUSY
        return service, asterisk, busy


async def _originations_done(service: ConferenceService) -> None:
    async with asyncio.timeout(5):
        await asyncio.gather(*service._originations)


async def test_a_re_dial_is_audited_with_its_number_purpose_and_basis(db: Database) -> None:
    call_id, _ = await _answered_sos(db)
    async with db.transaction() as session:
        session.add(AllowedNumber(number="02112345678", label="居委会", reason="值班电话"))
    service, asterisk, party = await _busy_party(db, call_id, number="02112345678")

    await service.redial(call_id, party.id)
    await _originations_done(service)
    assert len(asterisk.originates) == 2
    assert await _dials(db) == [
        (str(call_id), {"purpose": "conference", "number": "02112345678", "basis": "allowed"}),
        (str(call_id), {"purpose": "conference_redial", "number": "02112345678", "basis": "allowed"})]


async def _refused_re_dial(db: Database, service: ConferenceService, asterisk: _Asterisk, call_id: int,
                           order_id: int, party: ConferenceParticipant) -> None:
    """Re-dialling ``party`` is 403 ``number_not_allowed`` and dials, changes and records nothing."""
    dialled, dials, trail = list(asterisk.originates), await _dials(db), await _trail(db, order_id)
    with pytest.raises(Forbidden) as refused:
        await service.redial(call_id, party.id)
    assert (refused.value.status, refused.value.code, refused.value.field) == (403, "number_not_allowed", "number")
    await _originations_done(service)
    assert asterisk.originates == dialled
    async with db.transaction() as session:
        after = await session.get(ConferenceParticipant, party.id)
        assert after is not None
        assert (after.state, after.failure_reason, after.uniqueid) == (party.state, party.failure_reason,
                                                                       party.uniqueid)
    assert await _dials(db) == dials and await _trail(db, order_id) == trail


async def test_a_re_dial_is_refused_once_a_supervisor_withdrew_the_number_it_was_allowed_under(db: Database) -> None:
    call_id, order_id = await _answered_sos(db)
    async with db.transaction() as session:
        allowed = AllowedNumber(number="02112345678", label="居委会", reason="值班电话")
        session.add(allowed)
    service, asterisk, party = await _busy_party(db, call_id, number="02112345678")
    async with db.transaction() as session:
        await withdraw_number(session, allowed.id, actor=Actor(None, "supervisor"))
    await _refused_re_dial(db, service, asterisk, call_id, order_id, party)


async def test_a_re_dial_is_refused_once_the_number_is_no_longer_the_contacts(db: Database) -> None:
    """The contact the party was dialled as now has another number: the old one is nobody's any more."""
    call_id, order_id = await _answered_sos(db)
    contact_id = await _with_elder(db, call_id)
    service, asterisk, party = await _busy_party(db, call_id, contact_id=contact_id)
    assert (await _dials(db))[-1][1]["basis"] == "contact"
    async with db.transaction() as session:
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        contact.phone = "17700000109"  # the relative's new mobile
    await _refused_re_dial(db, service, asterisk, call_id, order_id, party)
