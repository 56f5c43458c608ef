"""One-click emergency conference against real Asterisk: elder and agent moved in without a drop, 120 dialled
through the trunk with the centre's caller ID, live roster, mute, remove, agent leaves, end for all."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.calls.models import Call, CallKind
from callcenter.db.session import Database
from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"


def _answered_sos(stack: harness.Stack) -> int | None:
    async def fetch(db: Database) -> int | None:
        async with db.transaction() as session:
            return await session.scalar(select(Call.id).where(
                Call.kind == CallKind.SOS, Call.agent_id.is_not(None), Call.ended_at.is_(None)))

    return stack.query(fetch)  # type: ignore[no-any-return]


def _roster(stack: harness.Stack, call_id: int, token: str) -> dict[str, Any]:
    status, body = stack.api("GET", f"/api/v1/calls/{call_id}/conference", token=token)
    assert status == 200, body
    return dict(body)


def _states(roster: dict[str, Any]) -> dict[str, str]:
    return {p["role"]: p["state"] for p in roster["participants"]}


def test_conference_with_120_mute_remove_leave_and_end(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    trunk = harness.trunk_phone(stack, sipp_dir / "trunk")
    assert stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=token)[0] == 200
    results: dict[str, harness.SippResult] = {}
    elder = threading.Thread(target=lambda: results.setdefault("elder", harness.sipp(
        stack, "call_until_bye", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
        variables={"user": seeded.device_user}, workdir=sipp_dir / "elder", timeout=90)))
    try:
        agent.answer("answer_until_bye", ring_ms=300, timeout=90)
        trunk.answer("answer_until_bye", ring_ms=500, timeout=90)
        elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")

        status, party = stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants", {"role": "120"},
                                  token=token)
        assert status == 201, party
        assert (party["role"], party["number"], party["state"]) == ("120", "120", "ringing")
        roster = harness.eventually(
            lambda: (r := _roster(stack, call_id, token)) and _states(r) == {
                "elder": "joined", "agent": "joined", "120": "joined"} and r,
            timeout=20, what="elder, agent and 120 in the conference")
        assert roster["active"] is True
        time.sleep(3)  # they talk: the conference recording needs some audio to hold
        party_id = next(p["id"] for p in roster["participants"] if p["role"] == "120")

        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants/{party_id}/mute",
                         token=token)[0] == 200
        harness.eventually(lambda: next(p for p in _roster(stack, call_id, token)["participants"]
                                        if p["id"] == party_id)["muted"], what="120 muted")
        # The agent steps out; the elder stays with 120.
        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/leave", token=token)[0] == 200
        harness.eventually(lambda: _states(_roster(stack, call_id, token)) == {
            "elder": "joined", "agent": "left", "120": "joined"}, what="agent left, elder and 120 still in")
        assert elder.is_alive()  # the elder's line is still up

        assert stack.api("DELETE", f"/api/v1/calls/{call_id}/conference/participants/{party_id}",
                         token=token)[0] == 200
        harness.eventually(lambda: _states(_roster(stack, call_id, token))["120"] == "left", what="120 removed")
        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)[0] == 200
        harness.eventually(lambda: _states(_roster(stack, call_id, token))["elder"] == "left", what="end")
        elder.join(30)
        assert results["elder"].ok, results["elder"].output

        # The whole conference is one recording, linked to the SOS call (next to the call's own recording).
        def serials() -> list[str]:
            status, page = stack.api("GET", f"/api/v1/recordings?call_id={call_id}", token=stack.token())
            assert status == 200, page
            return [item["serial_number"] for item in page["items"]]

        found = harness.eventually(lambda: [s for s in serials() if s.startswith("CONF-")], timeout=40,
                                   what="the conference recording")
        assert len(found) == 1
    finally:
        if elder.is_alive():
            elder.join(5)
        agent.stop()
        trunk.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)


def test_a_busy_relative_is_shown_with_its_cause_never_breaks_the_bridge_and_can_be_redialled(
        stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    trunk = harness.trunk_phone(stack, sipp_dir / "trunk")
    assert stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=token)[0] == 200
    results: dict[str, harness.SippResult] = {}
    elder = threading.Thread(target=lambda: results.setdefault("elder", harness.sipp(
        stack, "call_until_bye", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
        variables={"user": seeded.device_user}, workdir=sipp_dir / "elder", timeout=90)))
    try:
        agent.answer("answer_until_bye", ring_ms=300, timeout=90)
        trunk.answer("busy", ring_ms=200, timeout=30)
        elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")

        # No contact named: the elder's first relative by priority is dialled.
        status, party = stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants",
                                  {"role": "relative"}, token=token)
        assert status == 201, party
        assert party["number"] == "17700009902" and party["contact_id"] is not None
        try:
            busy = harness.eventually(
                lambda: next((p for p in _roster(stack, call_id, token)["participants"]
                              if p["id"] == party["id"] and p["state"] == "busy"), None),
                timeout=20, what="the relative shown busy")
        except AssertionError:
            raise AssertionError(f"{_roster(stack, call_id, token)} trunk: {trunk.wait(1)} "
                                 f"{stack.runtime.cli('core show channels')}") from None
        assert busy["failure_reason"] == "busy"
        assert _states(_roster(stack, call_id, token)) == {"elder": "joined", "agent": "joined", "relative": "busy"}
        assert trunk.wait(10).ok

        trunk.answer("answer_until_bye", ring_ms=200, timeout=60)
        status, again = stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants/{party['id']}/redial",
                                  token=token)
        assert status == 200 and again["state"] == "ringing", again
        harness.eventually(lambda: _states(_roster(stack, call_id, token))["relative"] == "joined",
                           timeout=20, what="the relative joining on the second try")
        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)[0] == 200
        elder.join(30)
        assert results["elder"].ok, results["elder"].output
    finally:
        if elder.is_alive():
            elder.join(5)
        agent.stop()
        trunk.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)


def test_conference_refusals(stack: harness.Stack) -> None:
    token = stack.token()
    status, body = stack.api("POST", "/api/v1/calls/999999/conference/participants", {"role": "120"}, token=token)
    assert status == 404
    status, body = stack.api("POST", "/api/v1/calls/1/conference/participants", {"role": "elder"}, token=token)
    assert status == 422 and body["error"]["field"] == "role"
    status, body = stack.api("POST", "/api/v1/calls/1/conference/participants", {"role": "120", "number": "12a"},
                             token=token)
    assert status == 422 and body["error"]["field"] == "number"
