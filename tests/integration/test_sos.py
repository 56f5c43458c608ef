"""The red button end to end: SOS intake, agent answer, recording, overflow and the abandoned-SOS callback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.recordings.models import Recording
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password, sip_ha1
from tests import harness

SUPERVISOR_EXTENSION, SUPERVISOR_PASSWORD = "8901", "supervisor-phone-pw"


def _latest_sos(stack: harness.Stack) -> tuple[Call, WorkOrder] | None:
    async def fetch(db: Database) -> tuple[Call, WorkOrder] | None:
        async with db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.kind == CallKind.SOS, Call.ended_at.is_not(None))
                                        .order_by(Call.id.desc()).limit(1))
            if call is None:
                return None
            order = await session.scalar(select(WorkOrder).options(selectinload(WorkOrder.events))
                                         .where(WorkOrder.call_id == call.id))
            return (call, order) if order is not None else None

    return stack.query(fetch)  # type: ignore[no-any-return]


def _sos_after(stack: harness.Stack, after_call_id: int) -> tuple[Call, WorkOrder] | None:
    found = _latest_sos(stack)
    return found if found is not None and found[0].id > after_call_id else None


def _recording_duration(stack: harness.Stack, serial: str | None) -> float | None:
    async def fetch(db: Database) -> float | None:
        async with db.transaction() as session:
            return await session.scalar(select(Recording.duration_seconds).where(Recording.serial_number == serial))

    return stack.query(fetch)  # type: ignore[no-any-return]


def _last_sos_id(stack: harness.Stack) -> int:
    found = _latest_sos(stack)
    return found[0].id if found else 0


@pytest.mark.every_database
def test_sos_answered_by_agent_is_recorded_and_raises_a_linked_emergency_order(stack: harness.Stack,
                                                                                sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=5000)

    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the SOS call and its order")
    agent_id = stack.query(lambda db: _user_id(db, "agent-test"))
    assert call.disposition is Disposition.ANSWERED
    assert call.queue == "emergency"
    assert call.agent_id == agent_id
    assert call.queue_wait_seconds is not None and call.queue_wait_seconds < 5
    assert call.recording_serial and call.recording_serial.startswith("SOS-")
    # Recorded from the first second: the recording holds the whole call, not just the bridged part. The pipeline
    # moves it from the spool into storage once the call has ended (tests/integration/test_recordings.py).
    duration = harness.eventually(lambda: _recording_duration(stack, call.recording_serial),
                                  what="the SOS recording")
    assert duration > 3

    assert order.kind is WorkOrderKind.EMERGENCY and order.priority == 1
    assert (order.elder_id, order.device_id, order.call_id) == (seeded.elder_id, seeded.device_id, call.id)
    assert order.location_text == "测试社区 1 号"
    actions = [event.action for event in order.events]
    assert actions[0] == "created"
    assert "sos_step:emergency-queue" in actions and "answered_by_agent" in actions
    harness.record_reliability(f"no fault ({stack.settings.database_url.split(':')[0]})",
                               harness.sos_answer_to_queue_seconds(stack, seeded.device_user))


def test_unanswered_sos_overflows_to_the_supervisor(stack: harness.Stack, sipp_dir: Path) -> None:
    """No agent in the emergency queue: after the answer target (5 s in tests) the on-duty supervisor rings."""
    before = _last_sos_id(stack)
    stack.query(_add_supervisor)
    stack.render_and_reload()
    seeded = stack.seeded  # type: ignore[attr-defined]
    supervisor = harness.Phone(stack, SUPERVISOR_EXTENSION, SUPERVISOR_PASSWORD, sipp_dir)
    supervisor.register()
    harness.add_queue_member(stack, "supervisors", SUPERVISOR_EXTENSION, "supervisor-test")
    try:
        supervisor.answer("answer_until_bye", ring_ms=300)
        result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user,
                              password=seeded.device_password,
                              variables={"user": seeded.device_user, "hold_ms": "9000"}, workdir=sipp_dir,
                              timeout=30)
        assert result.ok, result.output
        assert supervisor.wait(20).ok
    finally:
        supervisor.stop()
        harness.remove_queue_member(stack, "supervisors", SUPERVISOR_EXTENSION)

    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the SOS call")
    assert call.disposition is Disposition.ANSWERED
    assert call.agent_id == stack.query(lambda db: _user_id(db, "supervisor-test"))
    steps = [event for event in order.events if event.action.startswith("sos_step:")]
    assert [event.action for event in steps][:2] == ["sos_step:emergency-queue", "sos_step:supervisors"]
    assert steps[1].details["reason"] == "TIMEOUT"


def test_with_no_agent_and_no_supervisor_the_sos_reaches_the_elders_first_contact(stack: harness.Stack,
                                                                                   sipp_dir: Path) -> None:
    """Overflow's last step: through the trunk to the elder's first relative, with every step on the trail."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    relative = harness.trunk_phone(stack, sipp_dir / "relative")
    relative.answer("answer_until_bye", ring_ms=300, timeout=60)
    try:
        # Answer target 5 s + supervisors 10 s (test settings), then the relative; the elder stays 22 s.
        result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user,
                              password=seeded.device_password,
                              variables={"user": seeded.device_user, "hold_ms": "22000"}, workdir=sipp_dir,
                              timeout=40)
        assert result.ok, result.output
        assert relative.wait(20).ok
    finally:
        relative.stop()
    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the SOS call")
    steps = [event.action for event in order.events if event.action.startswith("sos_step:")]
    assert steps[:3] == ["sos_step:emergency-queue", "sos_step:supervisors", "sos_step:elder-contact"], steps
    assert call.disposition is Disposition.ANSWERED  # the relative picked up


@pytest.mark.every_database
def test_abandoned_sos_is_called_back_through_an_available_agent(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    # Nobody is in the queue: the elder presses the button and hangs up after 2 s of hold music.
    result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user,
                          password=seeded.device_password,
                          variables={"user": seeded.device_user, "hold_ms": "2000"}, workdir=sipp_dir)
    assert result.ok, result.output
    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the abandoned SOS")
    assert call.disposition is Disposition.ABANDONED
    harness.eventually(lambda: _order_actions(stack, order.id).count("sos_abandoned") == 1, what="sos_abandoned")
    called_back_once(stack, sipp_dir, order.id)

    async def check(db: Database) -> int:
        async with db.transaction() as session:
            stored = await session.get(WorkOrder, order.id)
            assert stored is not None
            return stored.priority

    assert stack.query(check) == 1


def test_a_silent_dead_line_becomes_an_abandoned_sos(stack: harness.Stack, sipp_dir: Path) -> None:
    """The device's audio stops (about 7 s of speech, then nothing) and nobody answers: after the device RTP
    timeout (30 s in tests) Asterisk hangs up the dead line, and the SOS is treated as abandoned (callback owed)."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    result = harness.sipp(stack, "call_until_bye", service="sos", auth_user=seeded.device_user,
                          password=seeded.device_password, variables={"user": seeded.device_user},
                          workdir=sipp_dir, timeout=70)
    assert result.ok, result.output  # the centre ended it: the device received a BYE
    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the dead-line SOS")
    assert call.answered_at is None  # nobody answered: the line died (Asterisk's RTP timeout ended it)
    assert 30 <= (call.ended_at - call.started_at).total_seconds() < 60
    harness.eventually(lambda: "sos_abandoned" in _order_actions(stack, order.id), what="sos_abandoned")


async def _user_id(db: Database, username: str) -> int | None:
    async with db.transaction() as session:
        return await session.scalar(select(User.id).where(User.username == username))


async def _add_supervisor(db: Database) -> None:
    async with db.transaction() as session:
        if await session.scalar(select(User.id).where(User.username == "supervisor-test")) is None:
            session.add(User(username="supervisor-test", password_hash=hash_password("supervisor-pw"),
                             role=Role.SUPERVISOR, extension=SUPERVISOR_EXTENSION,
                             sip_ha1=sip_ha1(SUPERVISOR_EXTENSION, SUPERVISOR_PASSWORD)))


def _order_actions(stack: harness.Stack, order_id: int) -> list[str]:
    async def fetch(db: Database) -> list[str]:
        async with db.transaction() as session:
            order = await session.scalar(select(WorkOrder).options(selectinload(WorkOrder.events))
                                         .where(WorkOrder.id == order_id))
            assert order is not None
            return [event.action for event in order.events]

    return stack.query(fetch)  # type: ignore[no-any-return]


def called_back_once(stack: harness.Stack, sipp_dir: Path, order_id: int) -> None:
    """An agent comes free: the platform rings the agent, then the elder's device, once, and the trail says so."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    device = harness.Phone(stack, seeded.device_user, seeded.device_password, sipp_dir)
    device.register()
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    agent.register()
    device.answer("answer", ring_ms=300, talk_ms=1500)
    agent.answer("answer_until_bye", ring_ms=300)
    try:
        harness.add_queue_member(stack, "emergency", seeded.agent_extension, "agent-test")
        assert device.wait(30).ok
        assert agent.wait(15).ok
    finally:
        device.stop()
        agent.stop()
        harness.remove_queue_member(stack, "emergency", seeded.agent_extension)
    actions = harness.eventually(lambda: (a := _order_actions(stack, order_id)) and "sos_callback_started" in a
                                 and a, what="the callback")
    assert actions.count("sos_abandoned") == 1 and actions.count("sos_callback_started") == 1, actions
    assert "sos_callback_attempt_failed" not in actions, actions


@pytest.mark.every_database
def test_sos_while_the_platform_is_down_reaches_an_agent_and_is_reconciled_later(stack: harness.Stack,
                                                                                   sipp_dir: Path) -> None:
    """FastAGI and AMI gone: the dialplan still queues the SOS; on return the CDR fills the call log once."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    try:
        harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=3000, ring_ms=300, before_call=stack.stop_platform)
    finally:
        stack.start_platform()
        stack.wait_healthy()

    call, order = harness.eventually(lambda: _sos_after(stack, before), what="the reconciled SOS")
    assert call.source == "cdr"
    assert (call.elder_id, call.device_id) == (seeded.elder_id, seeded.device_id)
    assert call.disposition is Disposition.ANSWERED
    assert call.agent_id == stack.query(lambda db: _user_id(db, "agent-test"))
    assert order.events[0].actor_label == "reconciler"

    # A second reconciliation (e.g. the next AMI reconnect) adds nothing.
    stack.stop_platform()
    stack.start_platform()
    stack.wait_healthy()
    time.sleep(1)

    async def count(db: Database) -> tuple[int, int]:
        from sqlalchemy import func

        async with db.transaction() as session:
            calls = await session.scalar(select(func.count()).select_from(Call).where(Call.linkedid == call.linkedid))
            orders = await session.scalar(select(func.count()).select_from(WorkOrder)
                                          .where(WorkOrder.call_id == call.id))
            return calls or 0, orders or 0

    assert stack.query(count) == (1, 1)


@pytest.mark.every_database
def test_the_call_log_api_shows_the_sos_record(stack: harness.Stack) -> None:
    """Seed 5.10's call record over the API: caller, callee, recording serial, wait, agent, times, disposition."""
    status, page = stack.api("GET", "/api/v1/calls?kind=sos", token=stack.token())
    assert status == 200, page
    answered = [call for call in page["items"] if call["disposition"] == "answered" and call["source"] == "ami"]
    assert answered, page
    record = answered[-1]
    assert record["callee_number"] == "sos" and record["caller_number"]
    assert record["recording_serial"].startswith("SOS-")
    assert record["queue"] == "emergency" and record["queue_wait_seconds"] is not None
    assert record["agent_id"] is not None and record["answered_at"] and record["ended_at"]
