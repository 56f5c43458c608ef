"""The 12349 hotline and green button against real Asterisk: the IVR menu by DTMF, and SOS priority."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from tests import harness


def _orders_for_latest_hotline_call(stack: harness.Stack, after_id: int) -> tuple[Call, list[WorkOrder]] | None:
    async def fetch(db: Database) -> tuple[Call, list[WorkOrder]] | None:
        async with db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.kind == CallKind.HOTLINE, Call.id > after_id,
                                                           Call.ended_at.is_not(None)).order_by(Call.id.desc()))
            if call is None:
                return None
            orders = (await session.scalars(select(WorkOrder).options(selectinload(WorkOrder.events))
                                            .where(WorkOrder.call_id == call.id))).all()
            return call, list(orders)

    return stack.query(fetch)  # type: ignore[no-any-return]


def _max_call_id(stack: harness.Stack) -> int:
    async def fetch(db: Database) -> int:
        async with db.transaction() as session:
            return (await session.scalar(select(Call.id).order_by(Call.id.desc()).limit(1))) or 0

    return stack.query(fetch)  # type: ignore[no-any-return]


def test_green_button_menu_raises_a_meal_service_request_then_queues(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _max_call_id(stack)
    scenario = harness.dtmf_scenario(sipp_dir, "11")  # 1 services → 1 meal delivery
    # Long enough to hear the confirmation and join the queue.
    result = harness.sipp(stack, scenario, service="12349", auth_user=seeded.device_user,
                          password=seeded.device_password, variables={"user": seeded.device_user, "hold_ms": "14000"},
                          workdir=sipp_dir, timeout=40)
    assert result.ok, result.output
    call, orders = harness.eventually(lambda: _orders_for_latest_hotline_call(stack, before))
    assert call.elder_id == seeded.elder_id
    assert [order.kind for order in orders] == [WorkOrderKind.SERVICE_REQUEST]
    order = orders[0]
    assert order.elder_id == seeded.elder_id and order.device_id == seeded.device_id
    assert order.events[0].actor_label == "ivr"
    assert "meal_delivery" in str(order.events[0].details) or "meal_delivery" in (order.description or "") \
        or "助餐" in order.title
    assert call.queue == "hotline"  # after the order, the caller waits for an agent


@pytest.mark.every_database
def test_callback_request_by_dtmf_is_recorded_and_the_call_ends(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _max_call_id(stack)
    scenario = harness.dtmf_scenario(sipp_dir, "4")
    result = harness.sipp(stack, scenario, service="12349", auth_user=seeded.device_user,
                          password=seeded.device_password, variables={"user": seeded.device_user, "hold_ms": "1000"},
                          workdir=sipp_dir, timeout=40)
    # The centre hangs up after the confirmation, possibly before SIPp's own BYE: either ending is fine.
    assert result.ok or "BYE" in result.output, result.output
    call, orders = harness.eventually(lambda: _orders_for_latest_hotline_call(stack, before), timeout=40)
    assert call.queue is None
    assert len(orders) == 1 and orders[0].kind is WorkOrderKind.CONSULTATION


def test_sos_jumps_ahead_of_three_waiting_hotline_callers(stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    agent.register()
    for queue in ("emergency", "hotline"):
        harness.add_queue_member(stack, queue, seeded.agent_extension, "agent-test")
    harness.set_paused(stack, seeded.agent_extension, True)
    before = _max_call_id(stack)
    results: dict[str, harness.SippResult] = {}

    def caller(name: str, service: str, scenario: str, hold_ms: int) -> None:
        results[name] = harness.sipp(stack, scenario, service=service, auth_user=seeded.device_user,
                                     password=seeded.device_password,
                                     variables={"user": seeded.device_user, "hold_ms": str(hold_ms)},
                                     workdir=sipp_dir / name, timeout=60)

    threads = []
    try:
        # Three hotline callers press 0 (an agent) and wait; then the red button is pressed.
        for index in range(3):
            scenario = harness.dtmf_scenario(sipp_dir / f"h{index}", "0", gap_ms=800)
            threads.append(threading.Thread(target=caller, args=(f"h{index}", "12349", scenario, 25000)))
            threads[-1].start()
            time.sleep(0.7)
        harness.eventually(lambda: (stack.runtime.cli("queue show hotline") or "").count("wait:") == 3, timeout=20)
        threads.append(threading.Thread(target=caller, args=("sos", "sos", "call", 6000)))
        threads[-1].start()
        harness.eventually(lambda: (stack.runtime.cli("queue show emergency") or "").count("wait:") == 1, timeout=10)
        agent.answer("answer_until_bye", ring_ms=300)
        harness.set_paused(stack, seeded.agent_extension, False)
        assert agent.wait(30).ok
    finally:
        for thread in threads:
            thread.join(70)
        agent.stop()
        for queue in ("emergency", "hotline"):
            harness.remove_queue_member(stack, queue, seeded.agent_extension)

    async def fetch(db: Database) -> list[Call]:
        async with db.transaction() as session:
            return list((await session.scalars(select(Call).where(Call.id > before).order_by(Call.id))).all())

    def all_ended() -> list[Call] | None:
        found = stack.query(fetch)
        return found if len(found) >= 4 and all(call.ended_at for call in found) else None

    calls = harness.eventually(all_ended, timeout=30, what="all four calls to end")
    answered = [call for call in calls if call.disposition is Disposition.ANSWERED]
    assert [call.kind for call in answered] == [CallKind.SOS], [(c.kind, c.disposition) for c in calls]
    assert all(call.disposition is Disposition.ABANDONED for call in calls if call.kind is CallKind.HOTLINE)


def test_wrong_key_then_complaint_raises_a_complaint_and_queues(stack: harness.Stack, sipp_dir: Path) -> None:
    """7 is not on the menu (the caller hears the invalid-choice prompt and tries again); 3 files a complaint."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _max_call_id(stack)
    scenario = harness.dtmf_scenario(sipp_dir, "73", gap_ms=2500)
    result = harness.sipp(stack, scenario, service="12349", auth_user=seeded.device_user,
                          password=seeded.device_password, variables={"user": seeded.device_user, "hold_ms": "14000"},
                          workdir=sipp_dir, timeout=40)
    assert result.ok, result.output
    call, orders = harness.eventually(lambda: _orders_for_latest_hotline_call(stack, before), what="the call")
    assert [order.kind for order in orders] == [WorkOrderKind.COMPLAINT]
    assert call.queue == "hotline"
