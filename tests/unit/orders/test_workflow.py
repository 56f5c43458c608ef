"""The state machine itself: every action outside ``TRANSITIONS`` is refused from every status of every kind and
changes nothing; who may take which step."""

from __future__ import annotations

import pytest

from callcenter.api.errors import Conflict
from callcenter.orders.models import WorkOrder, WorkOrderKind, WorkOrderStatus
from callcenter.orders.schemas import Action, ActionPayload
from callcenter.orders.services import CENTRE_TIMEZONE, raise_order
from callcenter.orders.workflow import TRANSITIONS, WorkflowActor, allowed_actions, perform
from callcenter.users.models import Role

SUPERVISOR = WorkflowActor(user_id=None, label="supervisor01", role=Role.SUPERVISOR)
AGENT = WorkflowActor(user_id=None, label="agent01", role=Role.AGENT)


def _allowed(kind: WorkOrderKind, status: WorkOrderStatus) -> set[Action]:
    return {t.action for t in TRANSITIONS if kind in t.kinds and status in t.sources}


def test_closed_and_cancelled_are_final_and_every_status_is_reachable() -> None:
    for kind in WorkOrderKind:
        for final in (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED):
            assert _allowed(kind, final) == set()
    targets = {t.target for t in TRANSITIONS if t.target is not None}
    assert targets | {WorkOrderStatus.OPEN, WorkOrderStatus.DRAFT} == set(WorkOrderStatus)


async def test_every_illegal_action_is_refused_and_changes_nothing(db) -> None:  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        orders: list[WorkOrder] = []
        for kind in WorkOrderKind:
            for status in WorkOrderStatus:
                order = await raise_order(session, kind=kind, actor_label="test")
                order.status = status
                orders.append(order)
        await session.flush()
        refused = 0
        for order in orders:
            version, status = order.version, order.status
            for action in set(Action) - _allowed(order.kind, order.status):
                with pytest.raises(Conflict) as caught:
                    await perform(session, order.id, action, actor=SUPERVISOR, version=version,
                                  payload=ActionPayload(reason="r"), tz=CENTRE_TIMEZONE)
                assert caught.value.code == "illegal_transition"
                refused += 1
            await session.refresh(order, ["version", "status", "events"])
            assert (order.version, order.status, len(order.events)) == (version, status, 1)
        assert refused > 800


async def test_provider_steps_belong_to_the_provider_and_centre_steps_to_the_centre(db) -> None:  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        order = await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="test")
        order.status = WorkOrderStatus.DISPATCHED
        order.provider_id = None
        await session.flush()
        # An agent cannot accept on the provider's behalf; a supervisor can record it (the provider phoned).
        assert Action.ACCEPT not in allowed_actions(order, AGENT)
        assert Action.ACCEPT in allowed_actions(order, SUPERVISOR)
        provider = WorkflowActor(user_id=None, label="provider-api:x", role=None, provider_id=7)
        assert allowed_actions(order, provider) == []  # not dispatched to provider 7
        order.provider_id = 7
        assert set(allowed_actions(order, provider)) == {Action.ACCEPT, Action.DECLINE}
        order.status = WorkOrderStatus.SERVICE_DONE
        assert allowed_actions(order, provider) == []  # receipt review is the centre's
        order.provider_id = None  # provider 7 exists only in this test's imagination: not to be saved
