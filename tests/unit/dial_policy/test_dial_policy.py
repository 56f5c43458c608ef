"""The outbound dialling policy: a typed conference number is dialled only when it is the elder's contact, a
service number or allowed by a supervisor; refused before anything changes otherwise; every dial audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from callcenter.api.errors import Forbidden
from callcenter.audit.models import AuditEntry
from callcenter.conferences.models import PartyRole
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.models import AllowedNumber
from callcenter.dial_policy.services import DialBasis, dial_basis
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.conferences.test_refusals import _service, _trail
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
