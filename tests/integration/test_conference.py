"""One-click emergency conference against real Asterisk: elder and agent moved in without a drop, 120 dialled
through the trunk with the centre's caller ID, live roster, mute, remove, agent leaves, end for all."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.asterisk.render import recordings_spool
from callcenter.calls.models import Call, CallKind
from callcenter.db.session import Database
from tests import harness
from tests.integration.conftest import DEVICE_PHONE, ELDER_ID_NUMBER, ELDER_PHONE
from tests.integration.test_desk import PanelListener

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


def _conference_recordings(stack: harness.Stack, call_id: int) -> list[dict[str, Any]]:
    """The call's conference recordings (serial CONF-…) as the recordings API lists them."""
    status, page = stack.api("GET", f"/api/v1/recordings?call_id={call_id}", token=stack.token())
    assert status == 200, page
    return [item for item in page["items"] if item["serial_number"].startswith("CONF-")]


@contextlib.contextmanager
def _sos_line(stack: harness.Stack, sipp_dir: Path, token: str, *phones: harness.Phone,
              hold_ms: int | None = None) -> Iterator[
        tuple[harness.Phone, threading.Thread, dict[str, harness.SippResult]]]:
    """The seeded agent's phone, registered and logged in to the queues, and the seeded device's SOS call (a thread
    to start) that stays up until the centre hangs up (or, with ``hold_ms``, until the elder hangs up that long
    after the answer), its result in the dict; afterwards the call is given a few seconds to end, the phones (and
    ``phones``) are stopped and the agent is logged out."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    assert stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=token)[0] == 200
    results: dict[str, harness.SippResult] = {}
    scenario, variables = ("call_until_bye", {"user": seeded.device_user}) if hold_ms is None else (
        "call", {"user": seeded.device_user, "hold_ms": str(hold_ms)})
    elder = threading.Thread(target=lambda: results.setdefault("elder", harness.sipp(
        stack, scenario, service="sos", auth_user=seeded.device_user, password=seeded.device_password,
        variables=variables, workdir=sipp_dir / "elder", timeout=90)))
    try:
        yield agent, elder, results
    finally:
        if elder.is_alive():
            elder.join(5)
        for phone in (agent, *phones):
            phone.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)


@pytest.mark.every_database
def test_conference_with_120_mute_remove_leave_and_end(stack: harness.Stack, sipp_dir: Path) -> None:
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    trunk = harness.trunk_phone(stack, sipp_dir / "trunk")
    with _sos_line(stack, sipp_dir, token, trunk) as (agent, elder, results):
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
        found = harness.eventually(lambda: _conference_recordings(stack, call_id), timeout=40,
                                   what="the conference recording")
        assert len(found) == 1


def test_a_busy_relative_is_shown_with_its_cause_never_breaks_the_bridge_and_can_be_redialled(
        stack: harness.Stack, sipp_dir: Path) -> None:
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    trunk = harness.trunk_phone(stack, sipp_dir / "trunk")
    with _sos_line(stack, sipp_dir, token, trunk) as (agent, elder, results):
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
        # The relative's line is hung up too (and its BYE answered here, not by the next test's trunk phone).
        redialled = trunk.wait(10)
        assert redialled.ok, redialled.output


@pytest.mark.every_database
def test_conference_refusals(stack: harness.Stack) -> None:
    token = stack.token()
    status, body = stack.api("POST", "/api/v1/calls/999999/conference/participants", {"role": "120"}, token=token)
    assert status == 404
    status, body = stack.api("POST", "/api/v1/calls/1/conference/participants", {"role": "elder"}, token=token)
    assert status == 422 and body["error"]["field"] == "role"
    status, body = stack.api("POST", "/api/v1/calls/1/conference/participants", {"role": "120", "number": "12a"},
                             token=token)
    assert status == 422 and body["error"]["field"] == "number"


def _add(stack: harness.Stack, call_id: int, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    return stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants", body, token=token)


def _order_trail(stack: harness.Stack, call_id: int) -> list[str]:
    """The actions on the trail of the call's emergency order."""
    elder_id = stack.seeded.elder_id  # type: ignore[attr-defined]
    status, orders = stack.api("GET", f"/api/v1/work-orders?kind=emergency&elder_id={elder_id}", token=stack.token())
    assert status == 200, orders
    order_id = next(o["id"] for o in orders["items"] if o["call_id"] == call_id)
    status, order = stack.api("GET", f"/api/v1/work-orders/{order_id}", token=stack.token())
    assert status == 200, order
    return [event["action"] for event in order["events"]]


def _refused_as_closed(status: int, body: Any) -> bool:
    return status == 409 and body["error"]["code"] == "conference_closed" and body["error"]["field"] == "call_id"


def test_a_refused_add_leaves_a_plain_call_and_an_ended_conference_dials_nobody(
        stack: harness.Stack, sipp_dir: Path) -> None:
    """Issue 11: a 422 changes nothing (no ConfBridge, no conference recording, nothing on the trail, the two still
    talking); after "end for everyone" an add, a mute and a redial are 409 and the trunk receives no INVITE."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    relative = _contact(stack, token, seeded.elder_id, "relative", "测试家属", "17700009902")
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    spool = recordings_spool(stack.runtime)
    with _sos_line(stack, sipp_dir, token, trunk) as (agent, elder, results):
        agent.answer("answer_until_bye", ring_ms=300, timeout=90)
        trunk.answer_calls(2, reject_number="0", ring_ms=300, timeout=90)
        elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")

        status, body = _add(stack, call_id, token, {"role": "relative", "contact_id": 999999999})
        assert status == 422 and body["error"]["field"] == "contact_id", body
        status, body = _add(stack, call_id, token, {"role": "doctor", "contact_id": relative["id"]})
        assert status == 422 and body["error"]["field"] == "role", body
        # Nothing moved: Asterisk has no conference, nothing records one, the trail is untouched, and the elder
        # and the agent are still on their two-party call.
        assert harness.ami_action(stack, {"Action": "ConfbridgeList", "Conference": f"cc-{call_id}"})[0][
            "Response"] == "Error"
        assert list(spool.glob("CONF-*")) == []
        assert not [action for action in _order_trail(stack, call_id) if action.startswith("conference_")]
        assert _roster(stack, call_id, token) == {"call_id": call_id, "active": False, "participants": []}
        assert elder.is_alive() and agent.is_running()

        assert _add(stack, call_id, token, {"role": "120"})[0] == 201
        roster = harness.eventually(
            lambda: (r := _roster(stack, call_id, token)) and _states(r) == {
                "elder": "joined", "agent": "joined", "120": "joined"} and r,
            timeout=20, what="elder, agent and 120 in the conference")
        party_id = next(p["id"] for p in roster["participants"] if p["role"] == "120")
        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)[0] == 200
        # At once, before Asterisk's events have told the roster: refused, nothing dialled.
        status, body = _add(stack, call_id, token, {"role": "120"})
        assert _refused_as_closed(status, body), body
        assert "ended" in body["error"]["message"]
        for action in ("mute", "unmute", "redial"):
            status, body = stack.api(
                "POST", f"/api/v1/calls/{call_id}/conference/participants/{party_id}/{action}", token=token)
            assert status == 409, (action, body)
        harness.eventually(lambda: _roster(stack, call_id, token)["active"] is False, what="the conference over")
        elder.join(30)
        assert results["elder"].ok, results["elder"].output
        call_ended = harness.eventually(lambda: stack.api("GET", f"/api/v1/calls/{call_id}", token=token)[1][
            "ended_at"], what="the call ended in the call log")
        assert call_ended
        status, body = _add(stack, call_id, token, {"role": "relative"})
        assert _refused_as_closed(status, body) and "call has ended" in body["error"]["message"], body
        status, body = stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)
        assert _refused_as_closed(status, body), body
        time.sleep(2)  # an INVITE sent by mistake would have reached the trunk by now
        assert trunk.invites() == [("120", "12349")], trunk.invites()
        assert _roster(stack, call_id, token)["active"] is False
        trail = _order_trail(stack, call_id)
        assert trail.count("conference_party_added") == 1 and "conference_ended" in trail, trail


def test_after_the_elder_hangs_up_nobody_more_is_dialled(stack: harness.Stack, sipp_dir: Path) -> None:
    """The elder hangs up while the agent and 120 are still in the room: adding the relative is a 409, the trunk
    gets no second INVITE; the agent can still end the conference for the lines left."""
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    with _sos_line(stack, sipp_dir, token, trunk, hold_ms=9000) as (agent, elder, results):
        agent.answer("answer_until_bye", ring_ms=300, timeout=90)
        trunk.answer_calls(2, reject_number="0", ring_ms=300, timeout=90)
        elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")
        assert _add(stack, call_id, token, {"role": "120"})[0] == 201
        harness.eventually(lambda: _states(_roster(stack, call_id, token)) == {
            "elder": "joined", "agent": "joined", "120": "joined"}, timeout=20, what="120 joining")
        elder.join(30)  # the elder hangs up
        assert results["elder"].ok, results["elder"].output
        harness.eventually(lambda: _states(_roster(stack, call_id, token)) == {
            "elder": "left", "agent": "joined", "120": "joined"}, what="the elder leaving the conference")

        status, body = _add(stack, call_id, token, {"role": "relative"})
        assert _refused_as_closed(status, body), body
        assert "elder is no longer in it" in body["error"]["message"]
        time.sleep(2)  # an INVITE sent by mistake would have reached the trunk by now
        assert trunk.invites() == [("120", "12349")], trunk.invites()

        # The agent closes the line left to 120.
        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)[0] == 200
        harness.eventually(lambda: _roster(stack, call_id, token)["active"] is False, what="everyone out")
        assert agent.wait(20).ok


def test_a_party_still_ringing_when_the_conference_ends_is_hung_up(stack: harness.Stack, sipp_dir: Path) -> None:
    """120 rings for 6 s; the agent ends the conference after 1: the ringing line is cancelled, never answered into
    an empty room, and the roster says so."""
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    with _sos_line(stack, sipp_dir, token, trunk) as (agent, elder, results):
        agent.answer("answer_until_bye", ring_ms=300, timeout=90)
        trunk.answer_calls(1, reject_number="0", ring_ms=6000, timeout=60)
        elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")
        assert _add(stack, call_id, token, {"role": "120"})[0] == 201
        harness.eventually(lambda: _states(_roster(stack, call_id, token)) == {
            "elder": "joined", "agent": "joined", "120": "ringing"}, what="the two in the room, 120 ringing")
        harness.eventually(trunk.invites, what="the trunk's INVITE for 120")
        assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)[0] == 200
        roster = harness.eventually(
            lambda: (r := _roster(stack, call_id, token)) and _states(r)["120"] not in ("ringing", "joined") and r,
            timeout=4, what="the ringing 120 line hung up while it still rang (5 s of its ring were left)")
        party = next(p for p in roster["participants"] if p["role"] == "120")
        assert party["joined_at"] is None, party
        elder.join(30)
        assert results["elder"].ok, results["elder"].output
        time.sleep(6)  # past the far end's ring time: had the line not been cancelled, it would answer now
        channels = stack.runtime.cli("core show channels concise", check=False) or ""
        assert "PJSIP/trunk-" not in channels, channels
        assert _states(_roster(stack, call_id, token))["120"] != "joined"


# The seeded elder has a relative (17700009902); the doctor and the social worker are this test's own contacts.
DOCTOR_PHONE, SOCIAL_WORKER_PHONE = "17700009904", "17700009905"


def _contact(stack: harness.Stack, token: str, elder_id: int, role: str, name: str, phone: str) -> dict[str, Any]:
    status, page = stack.api("GET", f"/api/v1/elders/{elder_id}/contacts", token=token)
    assert status == 200, page
    existing = next((c for c in page["items"] if c["role"] == role and c["phone"] == phone), None)
    if existing is not None:
        return dict(existing)
    status, contact = stack.api("POST", f"/api/v1/elders/{elder_id}/contacts",
                                {"role": role, "name": name, "phone": phone}, token=token)
    assert status == 201, contact
    return dict(contact)


def _rosters(panel: PanelListener, call_id: int) -> list[list[dict[str, Any]]]:
    """Every conference_roster snapshot the panel received for the call, in arrival order."""
    return [m["participants"] for m in list(panel.messages)
            if m["type"] == "conference_roster" and m["call_id"] == call_id]


def _latest(panel: PanelListener, call_id: int) -> dict[str, dict[str, Any]]:
    """The latest pushed roster, by role."""
    snapshots = _rosters(panel, call_id)
    return {p["role"]: p for p in snapshots[-1]} if snapshots else {}


def _pushed_states(panel: PanelListener, call_id: int) -> dict[str, str]:
    return {role: p["state"] for role, p in _latest(panel, call_id).items()}


def _await_pushed(panel: PanelListener, call_id: int, expected: dict[str, str], *, timeout: float,
                  context: Any = None) -> None:
    """Wait until the latest pushed roster has exactly ``expected`` states; on timeout name what it has instead."""
    try:
        harness.eventually(lambda: _pushed_states(panel, call_id) == expected, timeout=timeout,
                           what=f"the pushed roster {expected}")
    except AssertionError as error:
        extra = context() if callable(context) else ""
        raise AssertionError(f"{error}; last pushed: {list(_latest(panel, call_id).values())} {extra}") from None


def _state_sequences(snapshots: list[list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Each party's states as the panel saw them change (a repeated state is one step), by role."""
    sequences: dict[str, list[str]] = {}
    for snapshot in snapshots:
        for party in snapshot:
            seen = sequences.setdefault(party["role"], [])
            if not seen or seen[-1] != party["state"]:
                seen.append(party["state"])
    return sequences


def _bridged_channels(stack: harness.Stack, call_id: int) -> set[str]:
    """The channels Asterisk itself has in the call's conference room."""
    output = stack.runtime.cli(f"confbridge list cc-{call_id}", check=False) or ""
    return {line.split()[0] for line in output.splitlines() if line.startswith("PJSIP/")}


def test_sos_popped_conference_of_four_parties_one_declining_agent_leaves_recording_spans_the_conference(
        stack: harness.Stack, sipp_dir: Path) -> None:
    """The red button reaches the agent, whose panel pops the elder's file; the agent bridges 120, the doctor, the
    relative and the social worker (who declines) through the trunk; the panel's roster pushes follow each party in
    order; the agent steps out and the elder stays bridged with the three; ending it leaves one conference
    recording as long as the conference lasted."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    relative = _contact(stack, token, seeded.elder_id, "relative", "测试家属", "17700009902")
    doctor = _contact(stack, token, seeded.elder_id, "doctor", "测试医生", DOCTOR_PHONE)
    social_worker = _contact(stack, token, seeded.elder_id, "social_worker", "测试社工", SOCIAL_WORKER_PHONE)
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    with _sos_line(stack, sipp_dir, token, trunk) as (agent, elder, results):
        with PanelListener(stack, token) as panel:
            agent.answer("answer_until_bye", ring_ms=300, timeout=90)
            trunk.answer_calls(4, reject_number=SOCIAL_WORKER_PHONE, ring_ms=500, timeout=90)
            elder.start()

            pop = harness.eventually(lambda: panel.of_type("screen_pop"), timeout=20, what="the screen-pop")[0]
            call_id = pop["call_id"]
            assert pop["sos"] is True and pop["agent"] == AGENT
            assert pop["elder"]["id"] == seeded.elder_id and pop["elder"]["full_name"] == "测试老人"
            assert {c["id"] for c in pop["elder"]["contacts"]} >= {relative["id"], doctor["id"], social_worker["id"]}
            assert _answered_sos(stack) == call_id

            def add(role: str) -> dict[str, Any]:
                status, party = stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants",
                                          {"role": role}, token=token)
                assert status == 201, party
                assert party["state"] == "ringing", party
                return dict(party)

            # The agent first speaks with the elder alone (the SOS recording, running since the answer, is thus
            # seconds longer than the conference's and cannot pass for it).
            time.sleep(3)
            # The first party starts the conference: the elder and the agent are moved in, the room is created
            # (and recorded) with the first of them; from here the wall clock of the conference runs.
            parties = {"120": add("120")}
            harness.eventually(lambda: "joined" in _pushed_states(panel, call_id).values(), timeout=10,
                               what="the first member joining the conference")
            conference_started = time.monotonic()
            parties |= {role: add(role) for role in ("doctor", "relative", "social_worker")}
            # Each role reached its own number: 120, and the elder's first contact of the role.
            assert {role: (p["number"], p["contact_id"]) for role, p in parties.items()} == {
                "120": ("120", None), "doctor": (DOCTOR_PHONE, doctor["id"]),
                "relative": (relative["phone"], relative["id"]),
                "social_worker": (SOCIAL_WORKER_PHONE, social_worker["id"])}

            everyone = {"elder": "joined", "agent": "joined", "120": "joined", "doctor": "joined",
                        "relative": "joined", "social_worker": "failed"}
            _await_pushed(panel, call_id, everyone, timeout=20, context=lambda: (
                trunk.invites(), trunk.errors(), stack.runtime.cli("core show channels", check=False)))
            declined = _latest(panel, call_id)["social_worker"]
            assert declined["failure_reason"] == "rejected", declined
            assert sorted(trunk.invites()) == sorted([("120", "12349"), (DOCTOR_PHONE, "12349"),
                                                      (relative["phone"], "12349"), (SOCIAL_WORKER_PHONE, "12349")])

            time.sleep(2)  # all of them talk with the agent
            # The agent steps out: only their phone is hung up; the elder stays bridged with 120, doctor, relative.
            assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/leave", token=token)[0] == 200
            without_agent = {**everyone, "agent": "left"}
            _await_pushed(panel, call_id, without_agent, timeout=10)
            agent_result = agent.wait(10)
            assert agent_result.ok, agent_result.output
            # Asterisk agrees: the elder's device and three trunk lines are in the room, the agent's phone is not.
            bridged = _bridged_channels(stack, call_id)
            assert sorted(channel.rsplit("-", 1)[0] for channel in bridged) == [
                "PJSIP/dev-test-1", "PJSIP/trunk", "PJSIP/trunk", "PJSIP/trunk"], bridged
            time.sleep(3)  # the elder keeps talking with the three without the agent: nobody drops meanwhile
            assert elder.is_alive() and "elder" not in results
            assert _pushed_states(panel, call_id) == without_agent
            assert _bridged_channels(stack, call_id) == bridged

            assert stack.api("POST", f"/api/v1/calls/{call_id}/conference/end", token=token)[0] == 200
            all_left = {**without_agent, **{role: "left" for role in ("elder", "120", "doctor", "relative")}}
            _await_pushed(panel, call_id, all_left, timeout=10,
                          context=lambda: _roster(stack, call_id, token)["participants"])
            conference_seconds = time.monotonic() - conference_started
            elder.join(20)
            assert results["elder"].ok, results["elder"].output
            trunk_result = trunk.wait(20)
            assert trunk_result.ok, trunk_result.output

            sequences = _state_sequences(_rosters(panel, call_id))

        # Every party's pushed states in order (the agent's leaving, with everyone else still joined, was awaited
        # above): the elder and the agent (moved in, never dialled) may first show as ringing until their
        # ConfbridgeJoin; the three who answered joined and left with the end; the social worker declined.
        for role in ("elder", "agent"):
            assert sequences[role] in (["joined", "left"], ["ringing", "joined", "left"]), (role, sequences)
        for role in ("120", "doctor", "relative"):
            assert sequences[role] == ["ringing", "joined", "left"], (role, sequences)
        assert sequences["social_worker"] == ["ringing", "failed"], sequences

        found = harness.eventually(lambda: _conference_recordings(stack, call_id), timeout=40,
                                   what="the conference recording")
        assert len(found) == 1, found
        assert abs(found[0]["duration_seconds"] - conference_seconds) <= 2.0, (found[0], conference_seconds)

        # The SOS order's trail names the conference's recording and says who was added, joined, failed, left.
        status, orders = stack.api("GET", f"/api/v1/work-orders?kind=emergency&elder_id={seeded.elder_id}",
                                   token=stack.token())
        assert status == 200, orders
        order_id = next(o["id"] for o in orders["items"] if o["call_id"] == call_id)
        status, order = stack.api("GET", f"/api/v1/work-orders/{order_id}", token=stack.token())
        trail = [(e["action"], e["details"].get("role")) for e in order["events"]
                 if e["action"].startswith("conference_")]
        started = next(e for e in order["events"] if e["action"] == "conference_started")
        assert started["details"]["recording_serial"] == found[0]["serial_number"]
        assert started["actor_label"] == AGENT
        for role in ("120", "doctor", "relative", "social_worker"):
            assert ("conference_party_added", role) in trail, (role, trail)
        for role in ("elder", "agent", "120", "doctor", "relative"):
            assert trail.index(("conference_party_joined", role)) < trail.index(("conference_party_left", role))
        assert ("conference_party_failed", "social_worker") in trail
        assert ("conference_party_joined", "social_worker") not in trail

        # No personal data in the platform's log of the whole run (and of every test before it on this stack):
        # the elder's, the device's and the parties' numbers and the elder's resident ID appear nowhere, even
        # though the screen-pop, the conference and the trail carried them (callcenter.logs).
        log_text = stack.platform_log.read_text(errors="replace")  # type: ignore[union-attr]
        assert "sos.intake" in log_text and "conference.started" in log_text  # the run is in it
        for personal in (ELDER_PHONE, ELDER_ID_NUMBER, DEVICE_PHONE, relative["phone"], DOCTOR_PHONE,
                         SOCIAL_WORKER_PHONE):
            assert personal not in log_text, personal
