"""Agents over the REST API against real Asterisk: log in, registration decides availability, pause, log out."""

from __future__ import annotations

from pathlib import Path

from tests import harness

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"


def _state(stack: harness.Stack, token: str) -> dict[str, object]:
    status, body = stack.api("GET", f"/api/v1/agents/{AGENT}", token=token)
    assert status == 200, body
    return dict(body)


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
