"""The alarm's life: new → taken → responding → resolved, each step audited and put on its work order's trail; a
step from the wrong state, on a stale version, or on another agent's alarm is refused (409) and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callcenter.alarms import services
from callcenter.alarms.intake import ReceiptOutcome
from callcenter.alarms.models import Alarm, AlarmOutcome, AlarmSource, AlarmState
from callcenter.api.errors import Conflict, NotFound
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderStatus
from callcenter.users.models import Role, User
from tests.unit.alarms.factory import household, intake, message, raw


async def _actors(db: Database) -> tuple[Actor, Actor, Actor]:
    """Two agents and a supervisor, with accounts (taken_by_id is a foreign key)."""
    async with db.transaction() as session:
        users = [User(username=name, role=role, password_hash="x") for name, role in
                 (("li", Role.AGENT), ("wang", Role.AGENT), ("zhang", Role.SUPERVISOR))]
        session.add_all(users)
        await session.flush()
        agent, other, supervisor = (Actor(user.id, label) for user, label in
                                    zip(users, ("坐席小李", "坐席小王", "班长老张"), strict=True))
        return agent, other, supervisor


async def _new_alarm(db: Database) -> int:
    home = await household(db)
    receipt = await intake(db).receive_message(home.device_id, raw(message(alarm_type="gas")), AlarmSource.MQTT)
    assert receipt.outcome is ReceiptOutcome.STORED
    return receipt.alarm_id


async def test_the_whole_life_is_audited_and_on_the_orders_trail(db: Database) -> None:
    agent, _, _ = await _actors(db)
    alarm_id = await _new_alarm(db)
    async with db.transaction() as session:
        taken = await services.take(session, alarm_id, version=1, actor=agent)
        assert (taken.state, taken.taken_by_id, taken.taken_by, taken.version) == (
            AlarmState.TAKEN, agent.id, agent.label, 2)
    async with db.transaction() as session:
        responding = await services.respond(session, alarm_id, version=2, actor=agent, role=Role.AGENT)
        assert responding.state is AlarmState.RESPONDING and responding.responding_at is not None
    async with db.transaction() as session:
        resolved = await services.resolve(session, alarm_id, version=3, outcome=AlarmOutcome.GENUINE,
                                          note="老人已送医，燃气阀门已关闭", actor=agent, role=Role.AGENT)
        assert (resolved.state, resolved.outcome, resolved.outcome_note, resolved.resolved_by, resolved.version) == (
            AlarmState.RESOLVED, AlarmOutcome.GENUINE, "老人已送医，燃气阀门已关闭", agent.label, 4)
        assert resolved.taken_at is not None and resolved.resolved_at is not None
        assert resolved.taken_at <= resolved.responding_at <= resolved.resolved_at  # type: ignore[operator]
    async with db.transaction(read_only=True) as session:
        alarm = await session.get(Alarm, alarm_id)
        assert alarm is not None
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.target_type == "alarm",
                                                                AuditEntry.target_id == str(alarm_id))
                                       .order_by(AuditEntry.id))).all()
        assert [(entry.action, entry.details.get("from_state"), entry.details["to_state"]) for entry in audit] == [
            ("alarm.raise", None, "new"), ("alarm.take", "new", "taken"), ("alarm.respond", "taken", "responding"),
            ("alarm.resolve", "responding", "resolved")]
        assert [entry.actor_id for entry in audit[1:]] == [agent.id] * 3
        assert audit[-1].details["outcome"] == "genuine"
        trail = (await session.scalars(select(WorkOrderEvent).where(
            WorkOrderEvent.work_order_id == alarm.work_order_id).order_by(WorkOrderEvent.id))).all()
        assert [event.action for event in trail] == ["created", "alarm_taken", "alarm_responding", "alarm_resolved"]
        assert trail[-1].details == {"alarm": alarm.number, "outcome": "genuine", "note": "老人已送医，燃气阀门已关闭"}
        order = await session.get(WorkOrder, alarm.work_order_id)
        # The order follows its own workflow: resolving the alarm does not close it.
        assert order is not None and order.status is WorkOrderStatus.OPEN


async def test_a_false_alarm_is_resolved_straight_from_taken(db: Database) -> None:
    agent, _, _ = await _actors(db)
    alarm_id = await _new_alarm(db)
    async with db.transaction() as session:
        await services.take(session, alarm_id, version=1, actor=agent)
        resolved = await services.resolve(session, alarm_id, version=2, outcome=AlarmOutcome.FALSE, note=None,
                                          actor=agent, role=Role.AGENT)
        assert (resolved.state, resolved.outcome, resolved.responding_at) == (AlarmState.RESOLVED,
                                                                              AlarmOutcome.FALSE, None)


async def _refused(db: Database, step: str, alarm_id: int, version: int, actor: Actor, role: Role) -> Conflict:
    async with db.transaction() as session:
        before = (await session.get(Alarm, alarm_id)).version  # type: ignore[union-attr]
    with pytest.raises(Conflict) as refused:
        async with db.transaction() as session:
            if step == "take":
                await services.take(session, alarm_id, version=version, actor=actor)
            elif step == "respond":
                await services.respond(session, alarm_id, version=version, actor=actor, role=role)
            else:
                await services.resolve(session, alarm_id, version=version, outcome=AlarmOutcome.TEST, note=None,
                                       actor=actor, role=role)
    async with db.transaction() as session:
        assert (await session.get(Alarm, alarm_id)).version == before  # type: ignore[union-attr]
    return refused.value


async def test_illegal_and_stale_steps_are_refused_and_change_nothing(db: Database) -> None:
    agent, other, supervisor = await _actors(db)
    alarm_id = await _new_alarm(db)
    # From new, only take.
    for step in ("respond", "resolve"):
        conflict = await _refused(db, step, alarm_id, 1, agent, Role.AGENT)
        assert (conflict.code, conflict.field) == ("illegal_transition", "state"), step
    async with db.transaction() as session:
        await services.take(session, alarm_id, version=1, actor=agent)
    # Two agents took it from the same screen: the second is told who has it.
    conflict = await _refused(db, "take", alarm_id, 1, other, Role.AGENT)
    assert conflict.code == "illegal_transition" and agent.label in conflict.message
    # A stale version.
    conflict = await _refused(db, "respond", alarm_id, 1, agent, Role.AGENT)
    assert (conflict.code, conflict.field) == ("stale_version", "version")
    # Another agent's alarm: not theirs to move on; a supervisor may step in.
    conflict = await _refused(db, "respond", alarm_id, 2, other, Role.AGENT)
    assert conflict.code == "taken_by_another" and agent.label in conflict.message
    async with db.transaction() as session:
        await services.respond(session, alarm_id, version=2, actor=supervisor, role=Role.SUPERVISOR)
        await services.resolve(session, alarm_id, version=3, outcome=AlarmOutcome.TEST, note="安装调试",
                               actor=supervisor, role=Role.SUPERVISOR)
    for step in ("take", "respond", "resolve"):
        conflict = await _refused(db, step, alarm_id, 4, agent, Role.AGENT)
        assert conflict.code == "illegal_transition", step
    with pytest.raises(NotFound):
        async with db.transaction() as session:
            await services.take(session, alarm_id + 100, version=1, actor=agent)
