"""Listen, whisper and barge against real Asterisk: a SIPp supervisor phone is rung and attached by ChanSpy to a
live agent call in each mode (the options checked on Asterisk's own channel list), switched mid-call, stopped;
a non-supervisor is refused; every use is in the audit log."""

from __future__ import annotations

import threading
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


@pytest.mark.every_database
def test_supervisor_listens_whispers_barges_and_stops_and_each_use_is_audited(stack: harness.Stack,
                                                                            sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    sup_token = _supervisor(stack)
    agent_token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    supervisor = harness.Phone(stack, SUPERVISOR_EXTENSION, SUPERVISOR_PHONE, sipp_dir / "supervisor")
    supervisor.register()
    assert stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=agent_token)[0] == 200
    results: dict[str, harness.SippResult] = {}
    elder = threading.Thread(target=lambda: results.setdefault("elder", harness.sipp(
        stack, "call_until_bye", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
        variables={"user": seeded.device_user}, workdir=sipp_dir / "elder", timeout=90)))
    call_id: int | None = None
    ami = AmiEventLog(stack.settings, ("ChanSpyStart", "ChanSpyStop"))  # a second, read-only AMI session
    ami.start()

    def spy_events(name: str) -> list[AmiEvent]:
        return [e for e in ami.since() if e.name == name and e.get("SpyeeChannel") == target]

    try:
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
    finally:
        ami.stop()
        if call_id is not None:
            stack.api("DELETE", f"/api/v1/calls/{call_id}/spy", token=sup_token)  # 404 when it already ended
        if elder.is_alive():
            stack.runtime.cli("channel request hangup all")
            elder.join(30)
        agent.stop()
        supervisor.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=agent_token)
