"""POST /api/v1/work-orders/{id}/follow-up-call refuses clearly and records nothing when the call cannot be made:
the order not in follow-up, no extension on the caller's account, no dialable number for the elder, no trunk,
Asterisk down, no telephony in the process. The Originate it sends is checked here; the call itself (the agent's
phone rung, the elder dialled through the trunk) against real Asterisk in tests/integration/test_follow_up_call.py.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.api.context import TOKENS
from callcenter.calls.models import Call
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.elders.models import Elder
from callcenter.follow_up_calls.services import originate_request
from callcenter.orders.models import WorkOrderEvent
from callcenter.providers.models import ProviderStaff, ServiceProvider
from callcenter.users.models import Role, User
from tests.apiclient import Api, api_settings, assembled

RECEIPT = {"summary": "上门助浴 40 分钟", "result": "completed", "duration_minutes": 45, "satisfaction": 5}


@contextlib.asynccontextmanager
async def _dial_app(db: Database, settings: Settings) -> AsyncIterator[Api]:
    """The API with a follow-up dialer, its AMI client never started (Asterisk "down")."""
    app = assembled(db, settings).web
    async with TestClient(TestServer(app)) as client:
        yield Api(client, db, settings, app[TOKENS])


@pytest.fixture
async def dial_api(db: Database, tmp_path: Path) -> AsyncIterator[Api]:
    """A dialer on a trunk."""
    async with _dial_app(db, api_settings(tmp_path / "dial").replace(trunk_uri="sip:127.0.0.1:5099")) as api:
        yield api


async def _order_in_follow_up(api: Api, *, phone: str | None = "13900139000") -> dict[str, Any]:
    """A bathing order taken in, reviewed, served (a supervisor records the provider's steps) and its receipt
    approved: waiting for the follow-up call."""
    async with api.db.transaction() as session:
        provider = ServiceProvider(name=f"幸福家政{secrets.token_hex(2)}", phone="0374-5551234",
                                   services=["bathing"], communities=[], active=True)
        session.add(provider)
        await session.flush()
        staff = ProviderStaff(provider_id=provider.id, name="护理员", phone="13800138000")
        elder = Elder(full_name="王秀英", phone=phone, address="幸福路 1 号", community="幸福社区")
        session.add_all([staff, elder])
        await session.flush()
        provider_id, staff_id, elder_id = provider.id, staff.id, elder.id
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "service_request", "elder_id": elder_id, "title": "助浴", "description": "每周一次助浴",
        "service": "bathing"})
    assert status == 201, order
    for action, fields in (("submit", {}), ("dispatch", {"provider_id": provider_id}), ("accept", {}),
                           ("start", {"staff_id": staff_id}), ("finish", {"receipt": RECEIPT}),
                           ("approve_receipt", {})):
        status, order = await api.request("POST", f"/api/v1/work-orders/{order['id']}/actions",
                                          role=Role.SUPERVISOR,
                                          json={"action": action, "version": order["version"], **fields})
        assert status == 200, (action, order)
    assert order["status"] == "follow_up"
    return order


async def _agent(api: Api, extension: str | None) -> str:
    user = await api.user(Role.AGENT)
    if extension is not None:
        async with api.db.transaction() as session:
            (await session.get(User, user.id)).extension = extension  # type: ignore[union-attr]
    return await api.token_for(user)


async def _dial(api: Api, order_id: int, token: str) -> tuple[int, dict[str, Any]]:
    return await api.request("POST", f"/api/v1/work-orders/{order_id}/follow-up-call", token=token, role=None)


async def _nothing_recorded(api: Api, order_id: int) -> None:
    async with api.db.transaction() as session:
        actions = (await session.scalars(select(WorkOrderEvent.action).where(
            WorkOrderEvent.work_order_id == order_id))).all()
        assert not [a for a in actions if a.startswith("follow_up_call")]
        assert (await session.scalars(select(Call))).all() == []


async def test_refusals_say_what_to_fix_and_record_nothing(dial_api: Api) -> None:
    api = dial_api
    order = await _order_in_follow_up(api)
    with_phone = await _agent(api, "8301")

    status, body = await _dial(api, order["id"], await _agent(api, None))
    assert status == 409 and body["error"]["field"] == "extension", body
    assert "extension" in body["error"]["message"]

    status, body = await _dial(api, 999999, with_phone)
    assert status == 404, body

    # Asterisk is down (the AMI client never connected): 503, nothing dialled, nothing on the trail.
    status, body = await _dial(api, order["id"], with_phone)
    assert status == 503 and "Asterisk" in body["error"]["message"], body
    await _nothing_recorded(api, order["id"])

    # Closed (or any status but follow_up): not a follow-up any more.
    status, closed = await api.request("POST", f"/api/v1/work-orders/{order['id']}/actions", role=Role.AGENT, json={
        "action": "record_follow_up", "version": order["version"],
        "follow_up": {"satisfaction": 5, "solved": True}})
    assert status == 200, closed
    status, closed = await api.request("POST", f"/api/v1/work-orders/{order['id']}/actions", role=Role.AGENT,
                                       json={"action": "close", "version": closed["version"]})
    assert status == 200 and closed["status"] == "closed", closed
    status, body = await _dial(api, order["id"], with_phone)
    assert status == 409 and body["error"]["field"] == "status", body
    await _nothing_recorded(api, order["id"])


async def test_an_elder_without_a_dialable_number_is_a_422(dial_api: Api) -> None:
    api = dial_api
    token = await _agent(api, "8302")
    for phone, words in ((None, "no phone number"), ("010-6512 3456", "not a dialable number")):
        order = await _order_in_follow_up(api, phone=phone)
        status, body = await _dial(api, order["id"], token)
        assert status == 422 and body["error"]["field"] == "phone", body
        assert words in body["error"]["message"]
        await _nothing_recorded(api, order["id"])


async def test_without_a_trunk_outside_numbers_cannot_be_dialled(db: Database, tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    assert not settings.trunk_uri
    async with _dial_app(db, settings) as api:
        order = await _order_in_follow_up(api)
        status, body = await _dial(api, order["id"], await _agent(api, "8303"))
    assert status == 409 and "CC_TRUNK_URI" in body["error"]["message"], body


async def test_auditors_may_not_call(api: Api) -> None:
    status, body = await api.request("POST", "/api/v1/work-orders/1/follow-up-call", role=Role.AUDITOR)
    assert status == 403, body


def test_the_originate_rings_the_agent_into_the_follow_up_context_with_only_the_stored_number() -> None:
    action = originate_request(channel_id="ccf7-0a1b2c3d", extension="8301", number="13900139000",
                               order_number='WO-2024"<x>', order_id=7).action()
    assert action["Channel"] == "PJSIP/8301" and action["Context"] == "cc-follow-up"
    assert (action["Exten"], action["Priority"], action["Async"]) == ("s", "1", "true")
    assert action["ChannelId"] == "ccf7-0a1b2c3d"  # the call's linkedid: its events find the order
    assert action["Variable"] == ["CC_FOLLOW_UP_NUMBER=13900139000", "CC_ORDER_ID=7"]
    assert action["CallerID"] == '"回访 WO-2024x" <13900139000>'  # nothing from the order breaks the header


def test_the_dialplan_dials_only_digits_through_the_trunk_and_has_a_failure_path(tmp_path: Path) -> None:
    from tests.unit.asterisk.test_render import _render

    dialplan = _render(tmp_path, CC_TRUNK_URI="sip:127.0.0.1:5099")["extensions.conf"]
    context = dialplan.split("[cc-follow-up]\n", 1)[1].split("\n\n", 1)[0]
    assert "Set(CC_FU_NUMBER=${FILTER(0-9,${CC_FOLLOW_UP_NUMBER})})" in context
    assert '"${CC_FU_NUMBER}" = ""]?invalid' in context
    assert "Dial(PJSIP/${CC_FU_NUMBER}@trunk,45,U(cc-follow-up-answered))" in context
    assert "${EXTEN}" not in context
    # Busy, no answer, unreachable: announced for the trail, then a busy tone for the agent, then hung up.
    assert context.index("Dial(") < context.index("UserEvent(CcFollowUp,Status: ${DIALSTATUS})") < context.index(
        "Playtones(450/350,0/350)") < context.index("Wait(3)") < context.index("Hangup(16)")
    assert "UserEvent(CcFollowUp,Status: ANSWER)" in dialplan.split("[cc-follow-up-answered]", 1)[1]


# --- the alarm card's "call the elder" (POST /api/v1/alarms/{id}/call) -----------------------------------------

async def _alarm_for(api: Api, *, phone: str | None = "13900139000") -> dict[str, Any]:
    async with api.db.transaction() as session:
        elder = Elder(full_name="赵淑珍", phone=phone, address="月坛北街 8 号")
        session.add(elder)
        await session.flush()
        elder_id = elder.id
    status, alarm = await api.request("POST", "/api/v1/alarms", role=Role.AGENT,
                                      json={"type": "fall", "elder_id": elder_id})
    assert status == 201, alarm
    return alarm  # type: ignore[no-any-return]


async def test_calling_an_alarms_elder_needs_it_taken_and_records_nothing_when_it_cannot_ring(
        dial_api: Api) -> None:
    api = dial_api
    alarm = await _alarm_for(api)
    token = await _agent(api, "8311")
    call = f"/api/v1/alarms/{alarm['id']}/call"
    status, body = await api.request("POST", call, token=token, role=None)
    assert status == 409 and body["error"]["field"] == "state" and "take it" in body["error"]["message"], body
    status, taken = await api.request("POST", f"/api/v1/alarms/{alarm['id']}/take", token=token, role=None,
                                      json={"version": alarm["version"]})
    assert status == 200, taken
    status, body = await api.request("POST", call, token=await _agent(api, None), role=None)
    assert status == 409 and body["error"]["field"] == "extension", body
    # Taken, an extension, a trunk: only Asterisk is missing here (its ring is tested against real Asterisk).
    status, body = await api.request("POST", call, token=token, role=None)
    assert status == 503 and "Asterisk" in body["error"]["message"], body
    await _nothing_recorded(api, alarm["work_order_id"])
    status, body = await api.request("POST", "/api/v1/alarms/999999/call", token=token, role=None)
    assert status == 404, body
    status, body = await api.request("POST", call, role=Role.AUDITOR)
    assert status == 403, body


async def test_an_alarms_elder_without_a_dialable_number_is_a_422(dial_api: Api) -> None:
    api = dial_api
    alarm = await _alarm_for(api, phone=None)
    token = await _agent(api, "8312")
    status, taken = await api.request("POST", f"/api/v1/alarms/{alarm['id']}/take", token=token, role=None,
                                      json={"version": alarm["version"]})
    assert status == 200, taken
    status, body = await api.request("POST", f"/api/v1/alarms/{alarm['id']}/call", token=token, role=None)
    assert status == 422 and body["error"]["field"] == "phone", body
