"""The wallboard against real Asterisk: a SIPp hotline caller waits (Asterisk's wait, growing), the agent's SIPp
phone answers (talking, answered within 15 s), and after a platform restart the board is rebuilt from QueueStatus
with the caller's true wait, then counts the caller who gives up as abandoned."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path
from typing import Any

from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"  # seeded by tests/integration/conftest.py
SUPERVISOR, SUPERVISOR_PASSWORD = "supervisor-wb", "harbour-violet-sparrow-wb"


def supervisor_token(stack: harness.Stack) -> str:
    """A supervisor account (made once per stack through the REST API, as an admin would) and its token."""
    status, body = stack.api("POST", "/api/v1/users", {"username": SUPERVISOR, "password": SUPERVISOR_PASSWORD,
                                                       "role": "supervisor", "display_name": "值班班长"},
                             token=stack.token())
    assert status in (201, 409), body
    return stack.token(SUPERVISOR, SUPERVISOR_PASSWORD)


def wallboard(stack: harness.Stack, token: str) -> dict[str, Any]:
    status, body = stack.api("GET", "/api/v1/wallboard", token=token)
    assert status == 200, body
    return dict(body)


def queue(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in board["queues"] if q["name"] == name)


def asterisk_waits(stack: harness.Stack, name: str) -> list[int]:
    """Seconds each caller has waited, as `queue show` prints them (wait: M:SS)."""
    output = stack.runtime.cli(f"queue show {name}") or ""
    return [int(m) * 60 + int(s) for m, s in re.findall(r"wait: (\d+):(\d{2})", output)]


def hotline_caller(stack: harness.Stack, workdir: Path, hold_ms: int, results: dict[str, harness.SippResult],
                   key: str = "caller") -> threading.Thread:
    """The seeded device dials 12349, presses 0 for an agent and stays on the line ``hold_ms`` after that."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    scenario = harness.dtmf_scenario(workdir, "0", gap_ms=800)
    thread = threading.Thread(target=lambda: results.setdefault(key, harness.sipp(
        stack, scenario, service="12349", auth_user=seeded.device_user, password=seeded.device_password,
        variables={"user": seeded.device_user, "hold_ms": str(hold_ms)}, workdir=workdir,
        timeout=hold_ms / 1000 + 40)))
    thread.start()
    return thread


def today_counts_of_a_whole_call(stack: harness.Stack, token: str, *, within: float = 90.0) -> dict[str, Any]:
    """Today's hotline counts, taken where the call a test places next ends on the same centre day: within
    ``within`` seconds of the centre's midnight, first wait until just past it (a call that starts before midnight
    counts on yesterday, and the test would compare two days)."""
    board = wallboard(stack, token)
    midnight = dt.datetime.fromisoformat(board["day_start"]) + dt.timedelta(days=1)
    left = (midnight - dt.datetime.now(dt.UTC)).total_seconds()
    if left < within:
        time.sleep(max(0.0, left) + 1.0)  # bounded: at most ``within`` + 1 seconds
        board = wallboard(stack, token)
    return dict(queue(board, "hotline")["today"])


def waiting_caller(stack: harness.Stack, token: str) -> dict[str, Any] | None:
    callers = queue(wallboard(stack, token), "hotline")["callers"]
    return callers[0] if len(callers) == 1 and callers[0]["call_id"] is not None else None


def test_a_waiting_hotline_caller_then_the_agent_answering_show_on_the_wallboard(stack: harness.Stack,
                                                                                 sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = supervisor_token(stack)
    agent_token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    before = today_counts_of_a_whole_call(stack, token)
    phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    phone.register()
    results: dict[str, harness.SippResult] = {}
    caller = hotline_caller(stack, sipp_dir / "caller", 20000, results)
    try:
        # Nobody is in the queue yet: the caller waits, and the board says so with Asterisk's wait.
        first = harness.eventually(lambda: waiting_caller(stack, token), timeout=30, what="the caller waiting")
        board = wallboard(stack, token)
        call = next(c for c in board["calls"] if c["call_id"] == first["call_id"])
        assert (call["state"], call["queue"], call["kind"], call["elder_name"]) == (
            "waiting", "hotline", "hotline", "测试老人")
        assert queue(board, "hotline")["longest_wait_since"] == first["joined_at"]
        grown = harness.eventually(
            lambda: (c := waiting_caller(stack, token)) and c["wait_seconds"] >= first["wait_seconds"] + 2 and c,
            timeout=10, what="the wait to grow")
        assert grown["joined_at"] == first["joined_at"]  # the clock moves, the join time is Asterisk's and stays
        (asterisk_wait,) = asterisk_waits(stack, "hotline")
        assert abs(asterisk_wait - waiting_caller(stack, token)["wait_seconds"]) <= 2  # type: ignore[index]
        assert grown["wait_seconds"] < 12, "the agent must answer within 15 s for this test"

        # The agent logs in to the queues (the REST API, as the panel does); their phone answers.
        phone.answer("answer_until_bye", ring_ms=300, timeout=60)
        status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=agent_token)
        assert status == 200, body

        def talking() -> dict[str, Any] | None:
            board = wallboard(stack, token)
            call = next((c for c in board["calls"] if c["call_id"] == first["call_id"]), None)
            return board if call and call["state"] == "talking" and call["agent"] == AGENT else None

        board = harness.eventually(talking, timeout=20, what="the call talking to the agent")
        assert queue(board, "hotline")["waiting"] == 0
        agent = next(a for a in board["agents"] if a["username"] == AGENT)
        assert agent["call_id"] == first["call_id"] and agent["status"] == "on_call" and not agent["sos"]
        # The call log has the answer by now (another AMI subscriber writes it): within 15 s.
        harness.eventually(
            lambda: queue(wallboard(stack, token), "hotline")["today"]["answered_within_15s"]
            == before["answered_within_15s"] + 1, timeout=10, what="answered within 15 s to rise")
        today = queue(wallboard(stack, token), "hotline")["today"]
        assert today["answered"] == before["answered"] + 1 and today["offered"] == before["offered"] + 1
        assert today["abandoned"] == before["abandoned"]

        caller.join(60)
        assert results["caller"].ok, results["caller"].output
        harness.eventually(lambda: all(c["call_id"] != first["call_id"] for c in wallboard(stack, token)["calls"]),
                           timeout=15, what="the ended call to leave the board")
    finally:
        caller.join(60)
        phone.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=agent_token)


def test_after_a_restart_the_wallboard_has_the_callers_true_wait_and_counts_the_abandon(stack: harness.Stack,
                                                                                      sipp_dir: Path) -> None:
    token = supervisor_token(stack)
    before = today_counts_of_a_whole_call(stack, token)
    results: dict[str, harness.SippResult] = {}
    # Long enough for the restart, shorter than the dead-line timeout (CC_DEVICE_RTP_TIMEOUT=30: SIPp sends no audio).
    caller = hotline_caller(stack, sipp_dir / "caller", 22000, results)
    try:
        first = harness.eventually(lambda: waiting_caller(stack, token), timeout=30, what="the caller waiting")
        # The platform goes away and comes back: no AMI event told it when the caller joined.
        stack.stop_platform()
        time.sleep(3)
        stack.start_platform()
        stack.wait_healthy()
        token = stack.token(SUPERVISOR, SUPERVISOR_PASSWORD)
        again = harness.eventually(lambda: waiting_caller(stack, token), timeout=20,
                                   what="the caller on the board again (QueueStatus after the login)")
        assert again["call_id"] == first["call_id"]
        assert again["wait_seconds"] >= first["wait_seconds"] + 3  # the wait was not restarted from zero
        # QueueEntry's Wait has whole seconds: the join time is the same within one.
        drift = abs(_instant(again["joined_at"]) - _instant(first["joined_at"]))
        assert drift <= 1.5, (first["joined_at"], again["joined_at"])

        # The caller gives up: abandoned, today.
        caller.join(60)
        assert results["caller"].ok, results["caller"].output
        harness.eventually(
            lambda: queue(wallboard(stack, token), "hotline")["today"]["abandoned"] == before["abandoned"] + 1,
            timeout=15, what="the abandoned count to rise")
        board = wallboard(stack, token)
        assert queue(board, "hotline")["waiting"] == 0
        assert all(c["call_id"] != first["call_id"] for c in board["calls"])
    finally:
        caller.join(60)


def _instant(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()
