"""The supervision-case scan at controlled times: deadlines near and past (on the Chinese working calendar for
complaints), repeated complaints per provider and per elder, dissatisfied results; idempotent; on the trail."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind, WorkOrderStatus
from callcenter.supervision_cases.models import CaseReason, CaseStatus, SupervisionCase
from callcenter.supervision_cases.scanner import EscalationScanner
from callcenter.supervision_cases.services import scan
from tests.unit.supervision_cases import factory
from tests.unit.supervision_cases.factory import SHANGHAI

T = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


async def _scan(db: Database, now: dt.datetime) -> list[tuple[CaseReason, str]]:
    async with db.transaction() as session:
        return [(case.reason, case.trigger_key) for case in await scan(session, now)]


async def _cases(db: Database) -> list[SupervisionCase]:
    async with db.transaction() as session:
        return list((await session.scalars(select(SupervisionCase).order_by(SupervisionCase.id))).all())


async def test_a_consultation_is_due_soon_at_37_h_and_overdue_at_49_h_and_nothing_before(db: Database) -> None:
    async with db.transaction() as session:
        provider = await factory.provider(session)
        elder = await factory.elder(session)
        order = await factory.order(session, WorkOrderKind.CONSULTATION, T, provider_id=provider.id,
                                    elder_id=elder.id)
    assert await _scan(db, T + 35 * HOUR) == []  # 13 h of 48 left: not yet near
    assert await _scan(db, T + 37 * HOUR) == [(CaseReason.DUE_SOON, f"due_soon:order:{order.id}")]
    assert await _scan(db, T + 38 * HOUR) == []  # once
    assert await _scan(db, T + 49 * HOUR) == [(CaseReason.OVERDUE, f"overdue:order:{order.id}")]
    assert await _scan(db, T + 50 * HOUR) == []
    due_soon, overdue = await _cases(db)
    assert (due_soon.status, due_soon.work_order_id, due_soon.provider_id, due_soon.elder_id) == (
        CaseStatus.OPEN, order.id, provider.id, elder.id)
    assert due_soon.opened_at == T + 37 * HOUR
    assert due_soon.details["due_at"] == (T + 48 * HOUR).isoformat()
    assert due_soon.details["due_soon_at"] == (T + 36 * HOUR).isoformat()
    assert order.number in overdue.summary and overdue.number != due_soon.number
    async with db.transaction() as session:
        events = await factory.trail(session, order.id)
    assert [(e.action, e.actor_label, e.details) for e in events[1:]] == [
        ("supervision_case_opened", "system", {"case": due_soon.number, "reason": "due_soon"}),
        ("supervision_case_opened", "system", {"case": overdue.number, "reason": "overdue"})]


async def test_a_complaint_before_the_national_day_holiday_is_overdue_only_after_13_october(db: Database) -> None:
    received = dt.datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)  # Wednesday, the eve of the 1-7 Oct holiday
    async with db.transaction() as session:
        complaint = await factory.order(session, WorkOrderKind.COMPLAINT, received)
    assert complaint.due_at == dt.datetime(2026, 10, 14, 0, 0, tzinfo=SHANGHAI)  # 8, 9, 10 (make-up), 12, 13
    assert await _scan(db, dt.datetime(2026, 10, 9, 17, 0, tzinfo=SHANGHAI)) == []
    assert await _scan(db, dt.datetime(2026, 10, 13, 23, 59, tzinfo=SHANGHAI)) == [
        (CaseReason.DUE_SOON, f"due_soon:order:{complaint.id}")]  # near, but not past
    assert await _scan(db, dt.datetime(2026, 10, 14, 0, 1, tzinfo=SHANGHAI)) == [
        (CaseReason.OVERDUE, f"overdue:order:{complaint.id}")]


async def test_finished_orders_and_orders_without_a_deadline_are_never_escalated(db: Database) -> None:
    async with db.transaction() as session:
        for status in (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED, WorkOrderStatus.DRAFT):
            await factory.order(session, WorkOrderKind.SERVICE_REQUEST, T, status=status)
        await factory.order(session, WorkOrderKind.EMERGENCY, T)  # handled live: no deadline
    assert await _scan(db, T + 30 * DAY) == []


async def test_two_complaints_about_one_provider_raise_one_case_and_later_ones_join_it(db: Database) -> None:
    closed = WorkOrderStatus.CLOSED  # closed complaints still count; no deadline cases in the way
    async with db.transaction() as session:
        provider = await factory.provider(session)
        other = await factory.provider(session)
        first = await factory.order(session, WorkOrderKind.COMPLAINT, T, status=closed, about_provider_id=provider.id)
        # Another provider's complaints 31 days apart are not "repeated".
        await factory.order(session, WorkOrderKind.COMPLAINT, T, status=closed, about_provider_id=other.id)
        await factory.order(session, WorkOrderKind.COMPLAINT, T + 31 * DAY, status=closed,
                            about_provider_id=other.id)
    assert await _scan(db, T + 1 * DAY) == []  # one complaint is not a pattern
    async with db.transaction() as session:
        second = await factory.order(session, WorkOrderKind.COMPLAINT, T + 10 * DAY, status=closed,
                                     about_provider_id=provider.id)
    key = f"complaints:provider:{provider.id}:20261102T090000Z"
    assert await _scan(db, T + 10 * DAY + HOUR) == [(CaseReason.REPEATED_COMPLAINTS, key)]
    assert await _scan(db, T + 10 * DAY + 2 * HOUR) == []
    [case] = await _cases(db)
    assert (case.provider_id, case.elder_id, case.work_order_id) == (provider.id, None, second.id)
    assert [o["id"] for o in case.details["orders"]] == [first.id, second.id]
    assert case.details["window_end"] == (T + 30 * DAY).isoformat()
    for order in (first, second):
        async with db.transaction() as session:
            assert [e.details for e in await factory.trail(session, order.id)
                    if e.action == "supervision_case_opened"] == [{"case": case.number,
                                                                   "reason": "repeated_complaints"}]

    # A third complaint within the window joins the case instead of opening another.
    async with db.transaction() as session:
        third = await factory.order(session, WorkOrderKind.COMPLAINT, T + 20 * DAY, status=closed,
                                    about_provider_id=provider.id)
    assert await _scan(db, T + 20 * DAY + HOUR) == []
    [case] = await _cases(db)
    assert [o["id"] for o in case.details["orders"]] == [first.id, second.id, third.id]
    assert "3 次" in case.summary
    async with db.transaction() as session:
        assert [e.action for e in await factory.trail(session, third.id)][-1] == "supervision_case_joined"

    # After the window a new one opens with the next complaint; a second complaint in it raises the next case.
    async with db.transaction() as session:
        await factory.order(session, WorkOrderKind.COMPLAINT, T + 45 * DAY, status=closed,
                            about_provider_id=provider.id)
    assert await _scan(db, T + 46 * DAY) == []
    async with db.transaction() as session:
        await factory.order(session, WorkOrderKind.COMPLAINT, T + 50 * DAY, status=closed,
                            about_provider_id=provider.id)
    assert await _scan(db, T + 51 * DAY) == [(CaseReason.REPEATED_COMPLAINTS,
                                              f"complaints:provider:{provider.id}:20261217T090000Z")]
    assert await _scan(db, T + 52 * DAY) == []


async def test_repeated_complaints_from_one_elder_count_neither_cancelled_nor_unfounded_ones(db: Database) -> None:
    closed = WorkOrderStatus.CLOSED
    async with db.transaction() as session:
        elder = await factory.elder(session)
        first = await factory.order(session, WorkOrderKind.COMPLAINT, T, status=closed, elder_id=elder.id)
        await factory.order(session, WorkOrderKind.COMPLAINT, T + DAY, status=WorkOrderStatus.CANCELLED,
                            elder_id=elder.id)
        await factory.order(session, WorkOrderKind.COMPLAINT, T + 2 * DAY, status=closed, elder_id=elder.id,
                            founded=False)
    assert await _scan(db, T + 3 * DAY) == []
    async with db.transaction() as session:
        second = await factory.order(session, WorkOrderKind.COMPLAINT, T + 4 * DAY, status=closed,
                                     elder_id=elder.id, founded=True)
    assert await _scan(db, T + 5 * DAY) == [(CaseReason.REPEATED_COMPLAINTS,
                                             f"complaints:elder:{elder.id}:20261102T090000Z")]
    [case] = await _cases(db)
    assert (case.elder_id, case.provider_id) == (elder.id, None)
    assert [o["id"] for o in case.details["orders"]] == [first.id, second.id]


async def test_a_dissatisfied_receipt_or_follow_up_raises_a_case_once(db: Database) -> None:
    async with db.transaction() as session:
        provider = await factory.provider(session)
        unhappy = await factory.order(session, WorkOrderKind.SERVICE_REQUEST, T, status=WorkOrderStatus.FOLLOW_UP,
                                      provider_id=provider.id)
        unhappy.receipt = {"summary": "打扫卫生", "result": "partial", "duration_minutes": 40, "satisfaction": 2}
        called_back = await factory.order(session, WorkOrderKind.SERVICE_REQUEST, T, status=WorkOrderStatus.CLOSED,
                                          provider_id=provider.id)
        called_back.receipt = {"summary": "送餐", "result": "completed", "duration_minutes": 10, "satisfaction": 4}
        called_back.follow_up = {"satisfaction": 1, "comments": "饭菜是凉的", "solved": False}
        happy = await factory.order(session, WorkOrderKind.SERVICE_REQUEST, T, status=WorkOrderStatus.CLOSED,
                                    provider_id=provider.id)
        happy.receipt = {"summary": "助浴", "result": "completed", "duration_minutes": 60, "satisfaction": 5}
        happy.follow_up = {"satisfaction": 3, "solved": True}
    now = T + 2 * HOUR  # well before any deadline
    assert sorted(await _scan(db, now)) == sorted([
        (CaseReason.DISSATISFIED, f"dissatisfied:order:{unhappy.id}"),
        (CaseReason.DISSATISFIED, f"dissatisfied:order:{called_back.id}")])
    assert await _scan(db, now + HOUR) == []
    cases = {case.work_order_id: case for case in await _cases(db)}
    assert cases[unhappy.id].provider_id == provider.id
    assert cases[unhappy.id].details["receipt_satisfaction"] == 2
    assert (cases[called_back.id].details["receipt_satisfaction"],
            cases[called_back.id].details["follow_up_satisfaction"]) == (4, 1)
    assert "1/5" in cases[called_back.id].summary


async def test_the_scanner_runs_the_scan_on_its_clock_and_only_writes_when_there_is_something(db: Database) -> None:
    now = T + 40 * HOUR
    async with db.transaction() as session:
        order = await factory.order(session, WorkOrderKind.CONSULTATION, T)
    scanner = EscalationScanner(db, interval_seconds=0.01, first_run_seconds=0, clock=lambda: now)
    [case] = await scanner.run_once()
    assert (case.reason, case.work_order_id) == (CaseReason.DUE_SOON, order.id)
    assert await scanner.run_once() == []
    now = T + 49 * HOUR
    await scanner.start()  # the periodic loop: one more case, once, then quiet rounds
    try:
        for _ in range(500):
            if scanner.rounds >= 5:
                break
            await asyncio.sleep(0.01)
    finally:
        await scanner.stop()
    assert scanner.rounds >= 5
    assert [(c.reason, c.work_order_id) for c in await _cases(db)] == [
        (CaseReason.DUE_SOON, order.id), (CaseReason.OVERDUE, order.id)]
    async with db.transaction() as session:
        assert (await session.get(WorkOrder, order.id)).version == order.version  # trail only: no stale edits
