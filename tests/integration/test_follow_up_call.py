"""One-click follow-up call (回访) against real Asterisk: the agent's SIPp phone rings and answers, then the elder's
number on file is dialled through the trunk (a SIPp UAS taking the trunk's calls by number). An elder who declines
is on the order's trail with the reason and the agent's line is closed; one who answers talks to the agent, the
call is logged with both legs and its recording, and the follow-up recorded with that call closes the order."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import pytest

from callcenter.db.session import Database
from callcenter.providers.models import ProviderStaff, ServiceProvider
from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"
DECLINING_PHONE = "13700137000"
RECEIPT = {"summary": "上门助浴", "result": "completed", "duration_minutes": 40, "satisfaction": 4}


def _provider(stack: harness.Stack) -> tuple[int, int]:
    async def make(db: Database) -> tuple[int, int]:
        async with db.transaction() as session:
            provider = ServiceProvider(name=f"回访测试家政{secrets.token_hex(2)}", phone="0374-5551234",
                                       services=["bathing"], communities=[], active=True)
            session.add(provider)
            await session.flush()
            staff = ProviderStaff(provider_id=provider.id, name="护理员", phone="13800138000")
            session.add(staff)
            await session.flush()
            return provider.id, staff.id

    return stack.query(make)  # type: ignore[no-any-return]


def _order_in_follow_up(stack: harness.Stack, elder_id: int, provider: tuple[int, int]) -> dict[str, Any]:
    admin = stack.token()
    status, order = stack.api("POST", "/api/v1/work-orders", {
        "kind": "service_request", "elder_id": elder_id, "title": "助浴", "description": "每周一次助浴",
        "service": "bathing"}, token=admin)
    assert status == 201, order
    for action, fields in (("submit", {}), ("dispatch", {"provider_id": provider[0]}), ("accept", {}),
                           ("start", {"staff_id": provider[1]}), ("finish", {"receipt": RECEIPT}),
                           ("approve_receipt", {})):
        status, order = stack.api("POST", f"/api/v1/work-orders/{order['id']}/actions",
                                  {"action": action, "version": order["version"], **fields}, token=admin)
        assert status == 200, (action, order)
    return dict(order)


def _trail(stack: harness.Stack, order_id: int, token: str) -> list[dict[str, Any]]:
    status, order = stack.api("GET", f"/api/v1/work-orders/{order_id}", token=token)
    assert status == 200, order
    return list(order["events"])


def _result(stack: harness.Stack, order_id: int, token: str) -> dict[str, Any] | None:
    return next((e for e in _trail(stack, order_id, token) if e["action"] == "follow_up_call_result"), None)


@pytest.mark.every_database
def test_follow_up_call_rings_the_agent_then_dials_the_elder_through_the_trunk(stack: harness.Stack,
                                                                               sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    provider = _provider(stack)
    status, declining = stack.api("POST", "/api/v1/elders", {
        "full_name": "李桂兰", "phone": DECLINING_PHONE, "address": "幸福路 2 号", "community": "测试社区"},
        token=stack.token())
    assert status == 201, declining
    declined_order = _order_in_follow_up(stack, declining["id"], provider)
    order = _order_in_follow_up(stack, seeded.elder_id, provider)

    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    trunk.answer_calls(2, reject_number=DECLINING_PHONE, ring_ms=300, timeout=50)
    try:
        # The elder declines: the trail says so, the agent hears a busy tone and the line is closed.
        agent.answer("answer_until_bye", ring_ms=300, timeout=30)
        status, placed = stack.api("POST", f"/api/v1/work-orders/{declined_order['id']}/follow-up-call",
                                   token=token)
        assert status == 201, placed
        assert (placed["extension"], placed["number"]) == (seeded.agent_extension, DECLINING_PHONE)
        result = harness.eventually(lambda: _result(stack, declined_order["id"], token), timeout=20,
                                    what="the declined call's outcome on the trail")
        assert result["details"]["elder_answered"] is False and result["call_id"] == placed["call_id"]
        assert agent.wait(15).ok
        status, call = stack.api("GET", f"/api/v1/calls/{placed['call_id']}", token=stack.token())
        ended = {leg["channel"].split("-")[0]: dt.datetime.fromisoformat(leg["ended_at"]) for leg in call["legs"]}
        # The agent heard the busy tone for its 3 s before the dialplan closed the line.
        assert (ended[f"PJSIP/{seeded.agent_extension}"] - ended["PJSIP/trunk"]).total_seconds() >= 2.5, call

        # The elder answers: agent and elder talk through the trunk.
        agent.answer("answer_until_bye", ring_ms=300, timeout=30)
        status, placed = stack.api("POST", f"/api/v1/work-orders/{order['id']}/follow-up-call", token=token)
        assert status == 201, placed
        assert placed["number"] == "17700009901"  # the elder's number on file, nothing else
        status, again = stack.api("POST", f"/api/v1/work-orders/{order['id']}/follow-up-call", token=token)
        assert status == 409 and "already ringing" in again["error"]["message"], again
        result = harness.eventually(lambda: _result(stack, order["id"], token), timeout=20,
                                    what="the elder answering")
        assert result["details"] == {"linkedid": placed["linkedid"], "dial_status": "ANSWER",
                                     "elder_answered": True}
        assert [number for number, _ in trunk.invites()] == [DECLINING_PHONE, "17700009901"], trunk.errors()

        status, call = stack.api("GET", f"/api/v1/calls/{placed['call_id']}", token=stack.token())
        assert status == 200, call
        assert (call["linkedid"], call["kind"], call["callee_number"]) == (
            placed["linkedid"], "outbound", "17700009901")
        channels = sorted(leg["channel"].split("-")[0] for leg in call["legs"])
        assert channels == [f"PJSIP/{seeded.agent_extension}", "PJSIP/trunk"], call["legs"]
        assert call["answered_at"] is not None

        elder_channel = next(leg["channel"] for leg in call["legs"] if leg["channel"].startswith("PJSIP/trunk"))
        stack.runtime.cli(f"channel request hangup {elder_channel}")  # the elder hangs up
        assert agent.wait(15).ok
        assert trunk.wait(15).ok, trunk.errors()

        # The follow-up is recorded with that call, and closes the order; the trail tells the whole story.
        status, recorded = stack.api("POST", f"/api/v1/work-orders/{order['id']}/actions", {
            "action": "record_follow_up", "version": order["version"], "call_id": placed["call_id"],
            "follow_up": {"satisfaction": 5, "comments": "很满意", "solved": True, "call_id": placed["call_id"]}},
            token=token)
        assert status == 200, recorded
        status, closed = stack.api("POST", f"/api/v1/work-orders/{order['id']}/actions", {
            "action": "close", "version": recorded["version"]}, token=token)
        assert status == 200 and closed["status"] == "closed", closed
        steps = [(e["action"], e["call_id"]) for e in closed["events"]
                 if e["action"].startswith("follow_up_call") or e["action"] in ("record_follow_up", "close")]
        assert steps == [("follow_up_call", placed["call_id"]), ("follow_up_call_result", placed["call_id"]),
                         ("record_follow_up", placed["call_id"]), ("close", None)]
        dialled = next(e for e in closed["events"] if e["action"] == "follow_up_call")
        assert dialled["actor_label"] == AGENT and dialled["details"]["number"] == "17700009901"
        # Every outbound dial is in the audit log too, with the number and why it may be dialled (dial_policy).
        status, audit = stack.api("GET", f"/api/v1/audit?action=dial.outbound&target_id={placed['call_id']}",
                                  token=stack.token())
        assert status == 200, audit
        assert [(a["actor_label"], a["details"]) for a in audit["items"]] == [
            (AGENT, {"purpose": "follow_up", "number": "17700009901", "basis": "elder", "order_id": order["id"]})]

        # The conversation was recorded (MixMonitor on the agent's line), found from the call.
        found = harness.eventually(lambda: stack.api("GET", f"/api/v1/calls/{placed['call_id']}",
                                                     token=stack.token())[1]["recordings"], timeout=30,
                                   what="the follow-up call's recording")
        assert found[0]["serial_number"].startswith("FU-")
    finally:
        agent.stop()
        trunk.stop()
