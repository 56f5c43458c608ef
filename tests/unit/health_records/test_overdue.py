"""An overdue follow-up visit raises exactly one work order for the community doctor, through the orders domain
(its trail's ``created`` entry), however many scans see it; a visit recorded moves the plan on, and the next
overdue visit gets its own order. Ended plans and plans not yet due raise nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor
from callcenter.db.session import Database
from callcenter.health_records import services
from callcenter.health_records.models import OverdueVisitOrder, VisitKind
from callcenter.health_records.overdue import OverdueVisitScanner
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from tests.apiclient import api_settings, assembled
from tests.unit.health_records.factory import elder_with_doctor
from tests.unit.supervision_cases.factory import SHANGHAI

STAFF = Actor(id=None, label="agent-test")
START = dt.date(2026, 9, 1)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    """``hour`` o'clock on ``day`` in the centre's zone, in UTC."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def _plan(db: Database, elder_id: int, *, interval: int = 30, active: bool = True) -> int:
    async with db.transaction() as session:
        plan = await services.create_plan(session, elder_id, conditions=["hypertension"], measurements=None,
                                          targets=None, medications=None, visit_interval_days=interval,
                                          started_on=START, first_visit_due=None, actor=STAFF)
        if not active:
            await services.update_plan(session, elder_id, plan.id, version=1, changes={"active": False},
                                       actor=STAFF, today=START)
        return plan.id


async def _orders(db: Database) -> list[WorkOrder]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(WorkOrder).order_by(WorkOrder.id))).all())


async def test_an_overdue_visit_raises_exactly_one_order_for_the_community_doctor(db: Database) -> None:
    elder_id = await elder_with_doctor(db)
    plan_id = await _plan(db, elder_id)  # the first visit falls due 2026-10-01
    clock = Clock(at(dt.date(2026, 10, 1)))
    scanner = OverdueVisitScanner(db, tz=SHANGHAI, interval_seconds=3600, clock=clock)
    assert await scanner.run_once() == []  # due today: not overdue yet
    clock.now = at(dt.date(2026, 10, 2), hour=0)  # just past midnight in Beijing, still 1 October in UTC
    raised = await scanner.run_once()
    assert len(raised) == 1
    for hour in (1, 9, 23):  # every later round sees it overdue, and raises nothing more
        clock.now = at(dt.date(2026, 10, 3), hour=hour)
        assert await scanner.run_once() == []
    orders = await _orders(db)
    assert len(orders) == 1
    order = orders[0]
    assert (order.kind, order.status, order.elder_id, order.title) == (
        WorkOrderKind.SERVICE_REQUEST, WorkOrderStatus.OPEN, elder_id, services.OVERDUE_TITLE)
    assert "李建国医生" in (order.description or "") and "2026-10-01" in (order.description or "")
    assert "hypertension" not in (order.description or "") and "高血压" not in (order.description or "")
    assert order.location_text == "朝阳区和平里 3 号楼"
    async with db.transaction(read_only=True) as session:
        events = (await session.scalars(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order.id))).all()
        assert [(event.action, event.actor_label) for event in events] == [("created", "system")]
        assert events[0].details["plan_id"] == plan_id and events[0].details["doctor"] == "李建国医生"
        link = (await session.scalars(select(OverdueVisitOrder))).one()
        assert (link.plan_id, link.due_on, link.work_order_id) == (plan_id, dt.date(2026, 10, 1), order.id)
        audit = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == services.VISIT_OVERDUE))).one()
        assert audit.details == {"plan_id": plan_id, "due_on": "2026-10-01", "work_order_id": order.id}


async def test_a_visit_moves_the_plan_on_and_the_next_overdue_visit_gets_its_own_order(db: Database) -> None:
    elder_id = await elder_with_doctor(db, doctor=None)  # no community doctor on file: the order says so
    plan_id = await _plan(db, elder_id)
    clock = Clock(at(dt.date(2026, 10, 5)))
    scanner = OverdueVisitScanner(db, tz=SHANGHAI, interval_seconds=3600, clock=clock)
    assert len(await scanner.run_once()) == 1
    async with db.transaction() as session:
        await services.add_visit(session, elder_id, visited_on=dt.date(2026, 10, 5), doctor="张医生",
                                 kind=VisitKind.HOME, plan_id=plan_id, notes=None, actor=STAFF,
                                 today=dt.date(2026, 10, 5))
    clock.now = at(dt.date(2026, 11, 4))  # due 2026-11-04: not yet overdue
    assert await scanner.run_once() == []
    clock.now = at(dt.date(2026, 11, 5))
    second = await scanner.run_once()
    assert len(second) == 1 and await scanner.run_once() == []
    orders = await _orders(db)
    assert len(orders) == 2 and "未登记" in (orders[1].description or "")
    async with db.transaction(read_only=True) as session:
        dues = (await session.scalars(select(OverdueVisitOrder.due_on).order_by(OverdueVisitOrder.id))).all()
    assert list(dues) == [dt.date(2026, 10, 1), dt.date(2026, 11, 4)]


async def test_ended_plans_and_plans_not_yet_due_raise_nothing(db: Database) -> None:
    elder_id = await elder_with_doctor(db)
    await _plan(db, elder_id, active=False)
    await _plan(db, elder_id, interval=90)  # due 2026-11-30
    scanner = OverdueVisitScanner(db, tz=SHANGHAI, interval_seconds=3600, clock=Clock(at(dt.date(2026, 11, 1))))
    assert await scanner.run_once() == [] and await _orders(db) == []
    assert scanner.rounds == 1


async def test_the_platform_runs_the_scan_at_its_configured_interval(db: Database, tmp_path: Path) -> None:
    settings = api_settings(tmp_path, CC_HEALTH_VISIT_SCAN_SECONDS="600")
    scanners = [job for job in assembled(db, settings).jobs if isinstance(job, OverdueVisitScanner)]
    assert len(scanners) == 1 and scanners[0].interval_seconds == 600
