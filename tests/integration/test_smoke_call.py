"""The first real call: a device registers with digest auth and dials sos; the platform identifies the elder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.calls.models import Call, CallKind, Disposition, IdentifiedBy
from callcenter.db.session import Database
from tests import harness


def _wait_for_ended_call(stack: harness.Stack, caller_number: str, timeout: float = 10.0) -> Call:
    async def fetch(db: Database) -> Call | None:
        async with db.transaction() as session:
            return await session.scalar(
                select(Call).where(Call.caller_number == caller_number, Call.ended_at.is_not(None))
                .order_by(Call.id.desc()).limit(1)
            )

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = stack.query(fetch)
        if call is not None:
            return call
        time.sleep(0.2)
    raise AssertionError(f"no ended call from {caller_number} in the call log; platform log:\n"
                         f"{stack.platform_output()}")


def test_device_registers_with_digest_auth(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    result = harness.sipp(stack, "register", service=seeded.device_user, auth_user=seeded.device_user,
                          password=seeded.device_password, variables={"expires": "120"}, workdir=sipp_dir)
    assert result.ok, result.output
    contacts = stack.runtime.cli(f"pjsip show aor {seeded.device_user}")
    assert "Contact:" in (contacts or ""), contacts


def test_wrong_sip_password_is_rejected(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    result = harness.sipp(stack, "register_rejected", service=seeded.device_user, auth_user=seeded.device_user,
                          password="not-the-password", variables={"expires": "120"}, workdir=sipp_dir)
    assert result.ok, result.output
    refused = harness.sipp(stack, "register", service=seeded.device_user, auth_user=seeded.device_user,
                           password="not-the-password", variables={"expires": "120"}, workdir=sipp_dir,
                           timeout=5)
    assert not refused.ok


@pytest.mark.every_database
def test_sos_call_from_device_is_identified_answered_and_logged(stack: harness.Stack, sipp_dir: Path) -> None:
    """The device dials sos; the platform identifies the elder; an agent's phone answers; the call log has it all."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    agent.register()
    token = stack.token("agent-test", "agent-panel-pw")
    status, state = stack.api("POST", "/api/v1/agents/agent-test/login", token=token)
    assert status == 200 and state["status"] == "available", state
    try:
        agent.answer("answer_until_bye", ring_ms=300)
        started = time.time()
        result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user,
                              password=seeded.device_password,
                              variables={"user": seeded.device_user, "hold_ms": "4000"}, workdir=sipp_dir)
        assert result.ok, result.output + stack.platform_output()
        assert agent.wait(20).ok
    finally:
        agent.stop()
        stack.api("POST", "/api/v1/agents/agent-test/logout", token=token)

    call = _wait_for_ended_call(stack, "17700009903")
    assert call.kind is CallKind.SOS
    assert call.callee_number == "sos"
    assert call.elder_id == seeded.elder_id
    assert call.device_id == seeded.device_id
    assert call.identified_by is IdentifiedBy.DEVICE
    assert call.disposition is Disposition.ANSWERED
    assert call.answered_at is not None and call.ended_at is not None
    assert started - 1 <= call.started_at.timestamp() <= call.answered_at.timestamp() <= call.ended_at.timestamp()
    assert call.queue == "emergency"


@pytest.mark.every_database
def test_unknown_caller_is_not_identified_as_anyone(stack: harness.Stack, sipp_dir: Path) -> None:
    """An agent's phone (no device, no elder) calling the hotline is logged as an unidentified hotline call."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    result = harness.sipp(stack, "call", service="12349", auth_user=seeded.agent_extension,
                          password=seeded.agent_password,
                          variables={"user": seeded.agent_extension, "hold_ms": "2000"}, workdir=sipp_dir)
    assert result.ok, result.output

    call = _wait_for_ended_call(stack, seeded.agent_extension)
    assert call.kind is CallKind.HOTLINE
    assert call.elder_id is None
    assert call.device_id is None
    assert call.identified_by is IdentifiedBy.NONE
    # Nobody took it: the caller gave up while the centre held them.
    assert call.disposition is Disposition.ABANDONED
