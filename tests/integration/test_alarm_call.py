"""Click-to-dial from an alarm's card against real Asterisk (issue 15): the agent takes a fall alarm, presses "call
the elder", their SIPp phone rings and answers, then the elder's number on file is dialled through the trunk (a
SIPp UAS taking the trunk's calls by number) and answers; the call is logged with both legs and recorded, and the
alarm's work order tells the story."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from callcenter.conferences.models import ConferenceParticipant
from callcenter.db.session import Database
from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"
ELDER_PHONE = "17700009901"  # the seeded elder's number on file


def test_calling_the_elder_from_a_taken_alarm_rings_the_agent_then_the_elder(stack: harness.Stack,
                                                                              sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    status, alarm = stack.api("POST", "/api/v1/alarms", {"type": "fall", "elder_id": seeded.elder_id,
                                                          "note": "女儿来电：老人在家摔倒"}, token=token)
    assert status == 201, alarm
    status, body = stack.api("POST", f"/api/v1/alarms/{alarm['id']}/call", token=token)
    assert status == 409 and body["error"]["field"] == "state", body  # take it first
    status, taken = stack.api("POST", f"/api/v1/alarms/{alarm['id']}/take", {"version": alarm["version"]},
                              token=token)
    assert status == 200 and taken["state"] == "taken", taken

    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    trunk.answer_calls(1, reject_number="10000000000", ring_ms=300, timeout=50)  # rejects nobody here
    try:
        agent.answer("answer_until_bye", ring_ms=300, timeout=30)
        status, placed = stack.api("POST", f"/api/v1/alarms/{alarm['id']}/call", token=token)
        assert status == 201, placed
        assert (placed["extension"], placed["number"], placed["order_id"]) == (
            seeded.agent_extension, ELDER_PHONE, alarm["work_order_id"])

        def result() -> dict | None:  # type: ignore[type-arg]
            status, order = stack.api("GET", f"/api/v1/work-orders/{alarm['work_order_id']}", token=token)
            assert status == 200, order
            return next((e for e in order["events"] if e["action"] == "follow_up_call_result"), None)

        answered = harness.eventually(result, timeout=20, what="the elder answering")
        assert answered["details"]["elder_answered"] is True and answered["call_id"] == placed["call_id"]
        assert [number for number, _ in trunk.invites()] == [ELDER_PHONE], trunk.errors()
        status, call = stack.api("GET", f"/api/v1/calls/{placed['call_id']}", token=stack.token())
        assert status == 200 and call["kind"] == "outbound" and call["callee_number"] == ELDER_PHONE, call
        assert sorted(leg["channel"].split("-")[0] for leg in call["legs"]) == [
            f"PJSIP/{seeded.agent_extension}", "PJSIP/trunk"], call["legs"]
        elder_channel = next(leg["channel"] for leg in call["legs"] if leg["channel"].startswith("PJSIP/trunk"))
        stack.runtime.cli(f"channel request hangup {elder_channel}")
        assert agent.wait(15).ok
        assert trunk.wait(15).ok, trunk.errors()
        status, audit = stack.api("GET", f"/api/v1/audit?action=dial.outbound&target_id={placed['call_id']}",
                                  token=stack.token())
        assert status == 200, audit
        assert [a["details"]["purpose"] for a in audit["items"]] == ["alarm_callback"]
        found = harness.eventually(lambda: stack.api("GET", f"/api/v1/calls/{placed['call_id']}",
                                                     token=stack.token())[1]["recordings"], timeout=30,
                                   what="the call's recording")
        assert found[0]["serial_number"].startswith("FU-")
        status, resolved = stack.api("POST", f"/api/v1/alarms/{alarm['id']}/resolve", {
            "version": taken["version"], "outcome": "genuine", "note": "已电话确认，老人无大碍"}, token=token)
        assert status == 200 and resolved["state"] == "resolved", resolved
    finally:
        agent.stop()
        trunk.stop()


def test_from_the_alarm_call_the_agent_brings_120_into_a_conference_with_the_elder(stack: harness.Stack,
                                                                                    sipp_dir: Path) -> None:
    """The card's "conference": on the call the centre placed (the agent's phone first, the elder through the
    trunk), the first party moves the two into the conference — the elder as the elder, the agent as the agent,
    not the other way round — and 120 is dialled in beside them; ending it hangs up everyone."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    status, alarm = stack.api("POST", "/api/v1/alarms", {"type": "fall", "elder_id": seeded.elder_id},
                              token=token)
    assert status == 201, alarm
    status, taken = stack.api("POST", f"/api/v1/alarms/{alarm['id']}/take", {"version": alarm["version"]},
                              token=token)
    assert status == 200, taken
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    trunk.answer_calls(2, reject_number="10000000000", ring_ms=300, timeout=60)  # the elder, then 120
    try:
        agent.answer("answer_until_bye", ring_ms=300, timeout=45)
        status, placed = stack.api("POST", f"/api/v1/alarms/{alarm['id']}/call", token=token)
        assert status == 201, placed
        call_id = placed["call_id"]

        def elder_talking() -> bool:
            status, call = stack.api("GET", f"/api/v1/calls/{call_id}", token=stack.token())
            assert status == 200, call
            return any(leg["channel"].startswith("PJSIP/trunk") and leg["answered_at"] for leg in call["legs"])

        harness.eventually(elder_talking, timeout=20, what="the elder answering the call from the card")
        status, party = stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants", {"role": "120"},
                                  token=token)
        assert status == 201, party

        def roster() -> list[dict]:  # type: ignore[type-arg]
            status, body = stack.api("GET", f"/api/v1/calls/{call_id}/conference", token=token)
            assert status == 200, body
            return list(body["participants"])

        joined = harness.eventually(
            lambda: (found := roster()) and {p["role"]: p["state"] for p in found} == {
                "elder": "joined", "agent": "joined", "120": "joined"} and found,
            timeout=25, what="elder, agent and 120 in the alarm call's conference")
        assert {p["role"]: p["number"] for p in joined}["elder"] == ELDER_PHONE

        async def channels(db: Database) -> dict[str, str]:
            async with db.transaction(read_only=True) as session:
                rows = await session.execute(select(ConferenceParticipant.role, ConferenceParticipant.channel)
                                             .where(ConferenceParticipant.call_id == call_id))
                return {role.value: channel for role, channel in rows}

        moved = stack.query(channels)
        assert moved["elder"].startswith("PJSIP/trunk-"), moved
        assert moved["agent"].startswith(f"PJSIP/{seeded.agent_extension}-"), moved
        bridged = stack.runtime.cli(f"confbridge list cc-{call_id}", check=False) or ""
        assert {moved["elder"], moved["agent"]} <= {line.split()[0] for line in bridged.splitlines()
                                                    if line.startswith("PJSIP/")}, bridged
        assert [number for number, _ in trunk.invites()] == [ELDER_PHONE, "120"], trunk.errors()
        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)[0] == 200
        assert agent.wait(20).ok
        assert trunk.wait(20).ok, trunk.errors()
    finally:
        agent.stop()
        trunk.stop()
