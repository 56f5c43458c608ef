"""Agents over the REST API against real Asterisk: log in, registration decides availability, pause, log out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"


def _state(stack: harness.Stack, token: str) -> dict[str, object]:
    status, body = stack.api("GET", f"/api/v1/agents/{AGENT}", token=token)
    assert status == 200, body
    return dict(body)


@pytest.mark.every_database
def test_agent_state_follows_login_registration_and_pause(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)

    # Logged in, but the phone has never registered: never available.
    status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=token)
    assert status == 200, body
    assert set(body["queues"]) == {"emergency", "hotline"}
    assert body["status"] == "unregistered" and body["available"] is False

    harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir).register()
    available = harness.eventually(lambda: (state := _state(stack, token))["available"] and state,
                                   what="the agent to become available after registering")
    assert available["status"] == "available"

    status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/pause", {"reason": ""}, token=token)
    assert status == 422 and body["error"]["field"] == "reason"
    status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/pause", {"reason": "午餐"}, token=token)
    assert status == 200, body
    assert (body["status"], body["paused"], body["pause_reason"]) == ("paused", True, "午餐")
    queue = stack.runtime.cli("queue show emergency") or ""
    assert "paused" in queue.lower()

    status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/unpause", token=token)
    assert status == 200 and body["status"] == "available"
    status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)
    assert status == 200 and body["status"] == "offline" and body["queues"] == []
    assert "agent-test" not in (stack.runtime.cli("queue show emergency") or "")


@pytest.mark.every_database
def test_agents_act_only_for_themselves_and_supervisors_see_all(stack: harness.Stack) -> None:
    token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    status, body = stack.api("POST", "/api/v1/agents/admin/login", token=token)
    assert status == 403, body
    status, body = stack.api("POST", "/api/v1/agents/nobody-here/login", token=stack.token())
    assert status == 404 and body["error"]["field"] == "username"
    status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/pause", {"reason": "会议"}, token=stack.token())
    assert status == 409  # not logged in: nothing to pause
    status, body = stack.api("GET", "/api/v1/agents", token=stack.token())
    assert status == 200 and isinstance(body["items"], list)


@contextmanager
def _platform_with(stack: harness.Stack, **env: str) -> Iterator[None]:
    """Restart the platform process with extra settings, and back without them afterwards."""
    saved = dict(stack.env)
    stack.stop_platform()
    stack.env.update(env)
    stack.start_platform()
    stack.wait_healthy()
    try:
        yield
    finally:
        stack.stop_platform()
        stack.env.clear()
        stack.env.update(saved)
        stack.start_platform()
        stack.wait_healthy()


def _member_line(stack: harness.Stack, queue: str) -> str:
    output = stack.runtime.cli(f"queue show {queue}") or ""
    return next((line for line in output.splitlines() if AGENT in line), "")


def _answer_one_sos(stack: harness.Stack, phone: harness.Phone, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    phone.answer("answer_until_bye", ring_ms=300)
    result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
                          variables={"user": seeded.device_user, "hold_ms": "2000"}, workdir=sipp_dir)
    assert result.ok, result.output
    assert phone.wait(20).ok


def test_wrap_up_after_a_call_keeps_sos_flowing_survives_a_restart_and_ends_by_itself_or_on_ready(
        stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    with _platform_with(stack, CC_WRAPUP_SECONDS="8"):
        token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
        phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
        phone.register()
        assert stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=token)[0] == 200
        try:
            harness.eventually(lambda: _state(stack, token)["status"] == "available", what="available")
            _answer_one_sos(stack, phone, sipp_dir)

            # The call ended: wrap-up. Paused for the hotline only; an SOS would still reach this agent.
            state = harness.eventually(lambda: (s := _state(stack, token))["status"] == "wrap_up" and s,
                                       what="wrap-up after the call")
            assert state["wrap_up"] is True and state["paused"] is False and state["available"] is True
            until = dt.datetime.fromisoformat(str(state["wrap_up_until"]))
            assert 4 < (until - dt.datetime.now(dt.UTC)).total_seconds() <= 8
            assert "paused" in _member_line(stack, "hotline").lower()
            assert "paused" not in _member_line(stack, "emergency").lower()

            # The platform restarts mid-wrap-up: the state comes back from Asterisk and still ends on time.
            stack.stop_platform()
            stack.start_platform()
            stack.wait_healthy()
            token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
            assert _state(stack, token)["status"] == "wrap_up"
            harness.eventually(lambda: _state(stack, token)["status"] == "available", timeout=15,
                               what="the wrap-up to end by itself")
            assert "paused" not in _member_line(stack, "hotline").lower()

            # Another call; this time the agent is ready at once ("ready" = resume).
            _answer_one_sos(stack, phone, sipp_dir)
            harness.eventually(lambda: _state(stack, token)["status"] == "wrap_up", what="wrap-up again")
            status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/unpause", token=token)
            assert status == 200 and body["status"] == "available" and body["wrap_up"] is False, body

            # A personal pause is never lifted by a wrap-up: pause during the wrap-up, and it stays.
            _answer_one_sos(stack, phone, sipp_dir)
            harness.eventually(lambda: _state(stack, token)["status"] == "wrap_up", what="wrap-up a third time")
            status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/pause", {"reason": "休息"}, token=token)
            assert status == 200 and body["status"] == "paused" and body["pause_reason"] == "休息", body
            assert "paused" in _member_line(stack, "emergency").lower()
        finally:
            phone.stop()
            stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)
