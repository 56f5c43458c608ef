"""The work-order trail has one owner (orders.trail): what it writes, and that no other module writes it."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

from sqlalchemy import select

from callcenter.calls.models import Call, CallKind
from callcenter.db.base import utcnow
from callcenter.orders import trail
from callcenter.orders.models import WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from callcenter.orders.services import raise_order
from callcenter.users.models import Role, User

PACKAGE = Path(trail.__file__).resolve().parents[1]
OWNER = Path(trail.__file__).resolve()


def trail_rows_built(source: str) -> list[int]:
    """Lines of ``source`` that build work-order trail rows: ``WorkOrderEvent(...)`` (by name or through a module),
    or an INSERT on its table (``insert(WorkOrderEvent)``, ``WorkOrderEvent.__table__.insert()``)."""

    def names_event(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id == "WorkOrderEvent") or (
            isinstance(node, ast.Attribute) and node.attr == "WorkOrderEvent")

    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        built = names_event(func)
        inserted = (isinstance(func, ast.Name) and func.id == "insert" and any(names_event(a) for a in node.args))
        table_insert = (isinstance(func, ast.Attribute) and func.attr == "insert"
                        and isinstance(func.value, ast.Attribute) and func.value.attr == "__table__"
                        and names_event(func.value.value))
        if built or inserted or table_insert:
            lines.append(node.lineno)
    return sorted(lines)


def test_the_scan_finds_every_way_of_building_a_trail_row() -> None:
    source = """
from callcenter.orders import models
from callcenter.orders.models import WorkOrderEvent
a = WorkOrderEvent(work_order_id=1, actor_label="x", action="y")
b = models.WorkOrderEvent(work_order_id=1, actor_label="x", action="y")
c = insert(WorkOrderEvent).values(work_order_id=1)
d = WorkOrderEvent.__table__.insert()
e = select(WorkOrderEvent.id).where(WorkOrderEvent.action == "y")
f = update(WorkOrderEvent).values(call_id=None)
"""
    assert trail_rows_built(source) == [4, 5, 6, 7]


def test_no_module_but_the_owner_builds_trail_rows() -> None:
    builders = {str(path.relative_to(PACKAGE.parent)): lines
                for path in sorted(PACKAGE.rglob("*.py")) if path.resolve() != OWNER
                if (lines := trail_rows_built(path.read_text(encoding="utf-8")))}
    assert builders == {}, f"write trail entries with callcenter.orders.trail.record_event, not here: {builders}"
    assert trail_rows_built(OWNER.read_text(encoding="utf-8")), "the owner itself builds the rows"


async def test_record_event_writes_every_field_in_the_callers_transaction(db) -> None:  # type: ignore[no-untyped-def]
    at = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    details = {"provider_id": 7, "notified": ["provider_portal"]}
    async with db.transaction() as session:
        user = User(username="agent01", role=Role.AGENT, password_hash="x")
        call = Call(linkedid="1715000000.1", kind=CallKind.SOS, started_at=at)
        session.add_all([user, call])
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="agent01")
        event = trail.record_event(session, order.id, "dispatch", actor_id=user.id, actor_label="agent01",
                                   call_id=call.id, details=details, at=at, from_status=WorkOrderStatus.UNDER_REVIEW,
                                   to_status=WorkOrderStatus.DISPATCHED)
        assert event in session.new
        details["provider_id"] = 8  # the caller's dict is the caller's: the entry keeps what was recorded
        order_id, user_id, call_id = order.id, user.id, call.id
    async with db.transaction(read_only=True) as session:
        row = await session.scalar(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order_id,
                                                               WorkOrderEvent.action == "dispatch"))
        assert row is not None
        assert (row.at, row.actor_id, row.actor_label, row.call_id) == (at, user_id, "agent01", call_id)
        # Stored as the plain strings the REST API returns.
        assert (type(row.from_status), row.from_status, row.to_status) == (str, "under_review", "dispatched")
        assert row.details == {"provider_id": 7, "notified": ["provider_portal"]}


async def test_record_event_defaults_a_machine_step_to_now_with_no_status_move(db) -> None:  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label=trail.SYSTEM)
        before = utcnow()
        trail.record_event(session, order.id, "recording_missing", actor_label=trail.SYSTEM)
        await session.flush()
        after = utcnow()
        row = await session.scalar(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order.id,
                                                               WorkOrderEvent.action == "recording_missing"))
        assert row is not None
        assert before <= row.at <= after
        assert (row.actor_id, row.actor_label, row.call_id, row.from_status, row.to_status, row.details) == (
            None, "system", None, None, None, {})


async def test_an_actor_label_longer_than_the_column_is_cut_not_refused(db) -> None:  # type: ignore[no-untyped-def]
    label = "督办" * 80  # an audit actor's label may run long
    async with db.transaction() as session:
        order = await raise_order(session, kind=WorkOrderKind.COMPLAINT, actor_label="agent01")
        trail.record_event(session, order.id, "legal_hold_set", actor_label=label, details={"reason": "court"})
        await session.flush()
        stored = await session.scalar(select(WorkOrderEvent.actor_label).where(
            WorkOrderEvent.work_order_id == order.id, WorkOrderEvent.action == "legal_hold_set"))
    assert stored == label[:trail.ACTOR_LABEL_LENGTH]


async def test_a_raised_order_starts_its_trail_with_created(db) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    async with db.transaction() as session:
        order = await raise_order(session, kind=WorkOrderKind.CONSULTATION, actor_label="ivr", now=now,
                                  details={"digits": "3"})
        [first] = order.events
        assert (first.action, first.at, first.actor_label, first.from_status, first.to_status, first.details) == (
            trail.CREATED, now, "ivr", None, "open", {"digits": "3"})
        assert first.work_order_id == order.id


def test_new_event_is_not_added_anywhere_until_it_is_put_on_an_order() -> None:
    event = trail.new_event(trail.CREATED, actor_label="agent01", to_status=WorkOrderStatus.OPEN)
    assert (event.work_order_id, event.action, event.to_status, event.from_status, event.details) == (
        None, "created", "open", None, {})
    # Left unset, so the column default (the insert time) applies rather than a NULL.
    assert "at" not in vars(event)
