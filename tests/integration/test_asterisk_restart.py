"""Asterisk crashes and comes back (issue 12, fault 3): the agents who were logged in, and their pauses with the
reasons, are back in its queues within seconds, put there by the platform from its database, and the next SOS is
answered through that restored membership."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.agents.models import AgentSession
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.session import Database
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password, sip_ha1
from tests import harness
from tests.integration.test_sos import _last_sos_id, called_back_once
from tests.integration.test_sos_faults import _abandoned_with_one_order, _press_sos, _sos_since

pytestmark = pytest.mark.integration

AGENT = "agent-test"  # seeded, phone 8101
SECOND, SECOND_EXTENSION, SECOND_PHONE_PASSWORD = "agent-restart", "8102", "agent-restart-phone-pw"
REASON = "午餐"
RESTORED_WITHIN = 15.0  # seconds after Asterisk answers AMI again


async def _add_second_agent(db: Database) -> None:
    async with db.transaction() as session:
        if await session.scalar(select(User.id).where(User.username == SECOND)) is None:
            session.add(User(username=SECOND, password_hash=hash_password("agent-restart-panel-pw"), role=Role.AGENT,
                             extension=SECOND_EXTENSION, sip_ha1=sip_ha1(SECOND_EXTENSION, SECOND_PHONE_PASSWORD)))


def _recorded(stack: harness.Stack) -> dict[str, tuple[list[str], bool, str | None]]:
    async def fetch(db: Database) -> dict[str, tuple[list[str], bool, str | None]]:
        async with db.transaction(read_only=True) as session:
            rows = (await session.execute(select(User.username, AgentSession)
                                          .join(AgentSession, AgentSession.user_id == User.id))).all()
            return {name: (sorted(row.queues), row.paused, row.pause_reason) for name, row in rows}

    return stack.query(fetch)  # type: ignore[no-any-return]


def _members(stack: harness.Stack, queue: str) -> dict[str, tuple[str, str]]:
    """Asterisk's own answer: member name → (Paused, PausedReason) in ``queue``."""
    messages = harness.ami_action(stack, {"Action": "QueueStatus", "Queue": queue})
    return {m.get("Name") or m.get("MemberName", ""): (m.get("Paused", ""), m.get("PausedReason", ""))
            for m in messages if m.get("Event") == "QueueMember"}


def _restored(stack: harness.Stack) -> dict[str, dict[str, tuple[str, str]]] | None:
    wanted = {AGENT: ("0", ""), SECOND: ("1", REASON)}
    try:
        found = {queue: _members(stack, queue) for queue in ("emergency", "hotline")}
    except (OSError, AssertionError):
        return None  # AMI not answering yet
    return found if all(found[queue] == wanted for queue in found) else None


def _kill_asterisk(stack: harness.Stack) -> None:
    """SIGKILL, as a crash would: no shutdown, nothing saved. Waits until the process is gone."""
    pid = stack.runtime.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # The test process started Asterisk, so reap it: a zombie still answers kill(pid, 0), and the runtime would take
    # it for a running Asterisk and not start another. (subprocess may have reaped it first.)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    harness.eventually(lambda: stack.runtime.pid() is None, timeout=10, what="Asterisk to be gone")


def _latest_answered_sos(stack: harness.Stack) -> Call | None:
    async def fetch(db: Database) -> Call | None:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(Call).where(Call.kind == CallKind.SOS, Call.ended_at.is_not(None))
                                        .order_by(Call.id.desc()).limit(1))

    call = stack.query(fetch)
    return call if call is not None and call.disposition is Disposition.ANSWERED else None


def _user_id(stack: harness.Stack, username: str) -> int | None:
    async def fetch(db: Database) -> int | None:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(User.id).where(User.username == username))

    return stack.query(fetch)  # type: ignore[no-any-return]


@pytest.mark.every_database
def test_agents_and_their_pauses_are_back_within_seconds_of_an_asterisk_crash_and_take_the_next_sos(
        stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    stack.query(_add_second_agent)
    stack.render_and_reload()  # the second agent's phone is provisioned
    admin = stack.token()
    first_phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "first")
    second_phone = harness.Phone(stack, SECOND_EXTENSION, SECOND_PHONE_PASSWORD, sipp_dir / "second")
    try:
        for username in (AGENT, SECOND):
            status, body = stack.api("POST", f"/api/v1/agents/{username}/login", token=admin)
            assert status == 200, body
        status, body = stack.api("POST", f"/api/v1/agents/{SECOND}/pause", {"reason": REASON}, token=admin)
        assert status == 200 and body["paused"] is True, body
        queues = ["emergency", "hotline"]
        assert _recorded(stack) == {AGENT: (queues, False, None), SECOND: (queues, True, REASON)}

        _kill_asterisk(stack)
        stack.runtime.start()  # returns once Asterisk is fully booted and answers AMI
        back = time.monotonic()
        found = harness.eventually(lambda: _restored(stack), timeout=RESTORED_WITHIN,
                                   what="both agents back in the emergency and hotline queues, the pause kept")
        restored_after = time.monotonic() - back
        harness.enable_dialplan_timings(stack)  # a restarted Asterisk has lost the test's timed log
        assert found["emergency"][SECOND] == ("1", REASON)
        assert "agent.restored" in stack.platform_output()

        # A phone registers again on its own schedule after its registrar restarted; SIPp's registers once, so
        # here it is done for it. The paused agent's phone is up and answering too, and must not ring.
        first_phone.register()
        second_phone.register()
        second_phone.answer("answer_until_bye", ring_ms=300)
        first_phone.answer("answer_until_bye", ring_ms=300)
        # No member is added here (unlike harness.sos_answered_by_agent): the restored membership routes the SOS.
        result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user,
                              password=seeded.device_password,
                              variables={"user": seeded.device_user, "hold_ms": "3000"}, workdir=sipp_dir)
        assert result.ok, result.output
        assert first_phone.wait(20).ok
        assert second_phone.is_running(), "the paused agent's phone was rung"
        call = harness.eventually(lambda: _latest_answered_sos(stack), what="the answered SOS in the call log")
        assert call.queue == "emergency" and call.agent_id == _user_id(stack, AGENT)
        harness.record_reliability("Asterisk killed and restarted",
                                   harness.sos_answer_to_queue_seconds(stack, seeded.device_user))
        harness.record_reliability("Asterisk killed and restarted: agents back in the queues", restored_after,
                                   measure="seconds_after_asterisk_answers")

        # Resume and log out are recorded too: nothing is left to restore.
        status, body = stack.api("POST", f"/api/v1/agents/{SECOND}/unpause", token=admin)
        assert status == 200 and body["paused"] is False, body
        assert _recorded(stack)[SECOND] == (queues, False, None)
    finally:
        first_phone.stop()
        second_phone.stop()
        for username in (AGENT, SECOND):
            stack.api("POST", f"/api/v1/agents/{username}/logout", token=admin)
    assert _recorded(stack) == {}
    assert _members(stack, "emergency") == {}


def test_an_sos_ringing_when_asterisk_dies_is_ended_and_called_back_once_it_returns(stack: harness.Stack,
                                                                                    sipp_dir: Path) -> None:
    """A crashed Asterisk writes no CDR line for the calls it held: the platform, listing the restarted Asterisk's
    channels, ends the SOS it still had open as abandoned, and calls the elder back."""
    before = _last_sos_id(stack)
    with ThreadPoolExecutor(1) as pool:
        _press_sos(stack, pool, sipp_dir, hold_ms=3000)  # dies with Asterisk: its outcome is not the point
        harness.eventually(lambda: _sos_since(stack, before, lambda c: c.queue == "emergency"),
                           what="the SOS waiting in the emergency queue")
        _kill_asterisk(stack)
        stack.runtime.start()
        harness.enable_dialplan_timings(stack)
        order_id = _abandoned_with_one_order(stack, before)
        called_back_once(stack, sipp_dir, order_id)
