"""Listen, whisper and barge against real Asterisk: a SIPp supervisor phone is rung and attached by ChanSpy to a
live agent call in each mode (the options checked on Asterisk's own channel list), switched mid-call, stopped;
a non-supervisor is refused; every use is in the audit log."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from benchmarks.ami_timing import AmiEvent, AmiEventLog
from callcenter.calls.models import Call, CallKind
from callcenter.db.session import Database
from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"
SUPERVISOR, SUPERVISOR_PASSWORD, SUPERVISOR_EXTENSION, SUPERVISOR_PHONE = (
    "sup-spy", "sup-spy-panel", "8201", "sup-spy-phone")


def _answered_sos(stack: harness.Stack) -> int | None:
    async def fetch(db: Database) -> int | None:
        async with db.transaction() as session:
            return await session.scalar(select(Call.id).where(
                Call.kind == CallKind.SOS, Call.agent_id.is_not(None), Call.ended_at.is_(None)))

    return stack.query(fetch)  # type: ignore[no-any-return]


def _chanspy_data(stack: harness.Stack) -> list[str]:
    """Asterisk's own view: the Data of every channel running ChanSpy (``<target>,<options>``)."""
    output = stack.runtime.cli("core show channels concise") or ""
    return [fields[6] for line in output.splitlines() if len(fields := line.split("!")) > 6
            and fields[5] == "ChanSpy"]


def _supervisor(stack: harness.Stack) -> str:
    status, body = stack.api("POST", "/api/v1/users", {
        "username": SUPERVISOR, "password": SUPERVISOR_PASSWORD, "role": "supervisor", "display_name": "监听班长",
        "extension": SUPERVISOR_EXTENSION, "sip_password": SUPERVISOR_PHONE}, token=stack.token())
    assert status in (201, 409), body
    return stack.token(SUPERVISOR, SUPERVISOR_PASSWORD)


@dataclasses.dataclass
class SpyLine:
    """The seeded agent's and the supervisor's phones, registered, the agent logged in, and the seeded device's SOS
    call as a thread to start (its result lands in ``results``)."""

    agent: harness.Phone
    supervisor: harness.Phone
    elder: threading.Thread
    results: dict[str, harness.SippResult]
    agent_token: str


@contextlib.contextmanager
def spy_line(stack: harness.Stack, sipp_dir: Path, *, hold_ms: int | None = None) -> Iterator[SpyLine]:
    """Phones and the elder's SOS call for a spy test: the elder stays until the centre hangs up, or with
    ``hold_ms`` hangs up that long after the answer. Afterwards every line is closed and the agent logged out."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    agent_token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    supervisor = harness.Phone(stack, SUPERVISOR_EXTENSION, SUPERVISOR_PHONE, sipp_dir / "supervisor")
    supervisor.register()
    assert stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=agent_token)[0] == 200
    scenario, variables = ("call_until_bye", {"user": seeded.device_user}) if hold_ms is None else (
        "call", {"user": seeded.device_user, "hold_ms": str(hold_ms)})
    results: dict[str, harness.SippResult] = {}
    elder = threading.Thread(target=lambda: results.setdefault("elder", harness.sipp(
        stack, scenario, service="sos", auth_user=seeded.device_user, password=seeded.device_password,
        variables=variables, workdir=sipp_dir / "elder", timeout=90)))
    try:
        yield SpyLine(agent, supervisor, elder, results, agent_token)
    finally:
        if elder.is_alive():
            stack.runtime.cli("channel request hangup all")
            elder.join(30)
        agent.stop()
        supervisor.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=agent_token)


@pytest.mark.every_database
def test_supervisor_listens_whispers_barges_and_stops_and_each_use_is_audited(stack: harness.Stack,
                                                                            sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    sup_token = _supervisor(stack)
    call_id: int | None = None
    ami = AmiEventLog(stack.settings, ("ChanSpyStart", "ChanSpyStop"))  # a second, read-only AMI session
    ami.start()

    def spy_events(name: str) -> list[AmiEvent]:
        return [e for e in ami.since() if e.name == name and e.get("SpyeeChannel") == target]

    with contextlib.ExitStack() as cleanup:
        line = cleanup.enter_context(spy_line(stack, sipp_dir))
        agent, supervisor, elder, agent_token = line.agent, line.supervisor, line.elder, line.agent_token
        cleanup.callback(ami.stop)
        # Runs first on the way out: a spy still on is stopped (a 404 when it already ended).
        cleanup.callback(lambda: call_id is not None and stack.api("DELETE", f"/api/v1/calls/{call_id}/spy",
                                                                     token=sup_token))
        agent.answer("answer_until_bye", ring_ms=300, timeout=90)
        supervisor.answer("answer_until_bye", ring_ms=300, timeout=90)
        elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")

        # Only supervisors (and admins) may; an agent is refused and nothing rings.
        status, body = stack.api("POST", f"/api/v1/calls/{call_id}/spy", {"mode": "listen"}, token=agent_token)
        assert status == 403, body
        status, body = stack.api("POST", f"/api/v1/calls/{call_id}/spy", {"mode": "eavesdrop"}, token=sup_token)
        assert status == 422 and body["error"]["field"] == "mode"

        status, spy = stack.api("POST", f"/api/v1/calls/{call_id}/spy", {"mode": "listen"}, token=sup_token)
        assert status == 201, spy
        assert spy["state"] == "ringing" and spy["agent_channel"].startswith(f"PJSIP/{seeded.agent_extension}-")
        target = spy["agent_channel"]

        def state() -> dict[str, Any]:
            status, body = stack.api("GET", f"/api/v1/calls/{call_id}/spy", token=sup_token)
            assert status == 200, body
            return dict(body)

        # ChanSpyStart (AMI) marks it active; Asterisk shows the supervisor's channel in ChanSpy, quiet.
        harness.eventually(lambda: state()["state"] == "active", timeout=15, what="the spy attached (ChanSpyStart)")
        assert harness.eventually(lambda: _chanspy_data(stack), what="ChanSpy running") == [f"{target},qE"]
        # AMI says who spies on whom: the supervisor's phone on the agent's channel.
        assert ami.wait_for(lambda _: len(spy_events("ChanSpyStart")) == 1, timeout=10), ami.since()
        assert spy_events("ChanSpyStart")[0].get("SpyerChannel").startswith(f"PJSIP/{SUPERVISOR_EXTENSION}-")

        for mode, options in (("whisper", "qEw"), ("barge", "qEB"), ("listen", "qE")):
            status, body = stack.api("PATCH", f"/api/v1/calls/{call_id}/spy", {"mode": mode}, token=sup_token)
            assert status == 200 and body["mode"] == mode, body
            harness.eventually(lambda options=options: _chanspy_data(stack) == [f"{target},{options}"],
                               what=f"ChanSpy in {mode} mode")
        assert supervisor.is_running()  # the supervisor's line stayed up through every switch
        # Every ChanSpy attachment AMI reported was the same spy channel (the switches re-enter it, never a new one).
        assert len({e.get("SpyerUniqueid") for e in spy_events("ChanSpyStart")}) == 1

        status, body = stack.api("DELETE", f"/api/v1/calls/{call_id}/spy", token=sup_token)
        assert status == 200 and body["state"] == "ended", body
        harness.eventually(lambda: _chanspy_data(stack) == [], what="ChanSpy gone")
        assert ami.wait_for(lambda _: spy_events("ChanSpyStop"), timeout=10), ami.since()  # AMI: the spy let go
        assert supervisor.wait(15).ok
        assert elder.is_alive()  # the elder and the agent never noticed
        status, body = stack.api("DELETE", f"/api/v1/calls/{call_id}/spy", token=sup_token)
        assert status == 404, body

        # The audit log: who, whose call, which modes, start and end.
        status, page = stack.api("GET", f"/api/v1/audit?target_type=call&target_id={call_id}", token=stack.token())
        assert status == 200, page
        entries = [e for e in page["items"] if e["action"].startswith("spy.")]
        assert [e["action"] for e in entries] == ["spy.start", "spy.mode", "spy.mode", "spy.mode", "spy.end"]
        assert {e["actor_label"] for e in entries} == {SUPERVISOR}
        end = entries[-1]["details"]
        assert [m["mode"] for m in end["modes"]] == ["listen", "whisper", "barge", "listen"]
        assert end["started_at"] < end["ended_at"]


def test_a_spy_answered_after_the_agents_call_ended_is_hung_up_at_once(stack: harness.Stack,
                                                                       sipp_dir: Path) -> None:
    """Issue 11, the same shape in listening: the supervisor's phone rings 6 s while the elder hangs up after 4;
    when the supervisor answers there is nothing to listen to, and the line is closed at once (ChanSpy would wait
    for the agent's channel for ever), the session ends and the audit log says so."""
    sup_token = _supervisor(stack)
    with spy_line(stack, sipp_dir, hold_ms=4000) as line:
        line.agent.answer("answer_until_bye", ring_ms=300, timeout=60)
        line.supervisor.answer("answer_until_bye", ring_ms=6000, timeout=60)
        line.elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")
        status, spy = stack.api("POST", f"/api/v1/calls/{call_id}/spy", {"mode": "listen"}, token=sup_token)
        assert status == 201, spy
        line.elder.join(30)
        assert line.results["elder"].ok, line.results["elder"].output
        # The supervisor answers about 2 s after the call ended and is hung up on straight away.
        assert line.supervisor.wait(12).ok
        assert _chanspy_data(stack) == []
        harness.eventually(lambda: stack.api("GET", f"/api/v1/calls/{call_id}/spy", token=sup_token)[0] == 404,
                           what="the spy session ended")
        status, page = stack.api("GET", f"/api/v1/audit?target_type=call&target_id={call_id}", token=stack.token())
        assert [e["action"] for e in page["items"] if e["action"].startswith("spy.")] == ["spy.start", "spy.end"]
