"""Reading work orders for the REST API (``services.py`` raises and moves them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.api.errors import NotFound
from callcenter.db.paging import paginate
from callcenter.orders.models import WorkOrder, WorkOrderKind, WorkOrderStatus


async def find_orders(session: AsyncSession, *, elder_id: int | None, status: WorkOrderStatus | None,
                      kind: WorkOrderKind | None, limit: int, offset: int, provider_id: int | None = None,
                      dispatched_only: bool = False) -> tuple[list[WorkOrder], int]:
    """Most urgent first, then newest. ``dispatched_only``: what a provider sees (orders sent to it), newest
    dispatch first."""
    statement = select(WorkOrder).order_by(
        *((WorkOrder.dispatched_at.desc(),) if dispatched_only else ()),
        WorkOrder.priority, WorkOrder.created_at.desc(), WorkOrder.id.desc())
    if provider_id is not None:
        statement = statement.where(WorkOrder.provider_id == provider_id)
    if dispatched_only:
        statement = statement.where(WorkOrder.dispatched_at.is_not(None))
    if elder_id is not None:
        statement = statement.where(WorkOrder.elder_id == elder_id)
    if status is not None:
        statement = statement.where(WorkOrder.status == status)
    if kind is not None:
        statement = statement.where(WorkOrder.kind == kind)
    return await paginate(session, statement, limit=limit, offset=offset)


async def get_order(session: AsyncSession, order_id: int) -> WorkOrder:
    order = await session.scalar(select(WorkOrder).where(WorkOrder.id == order_id)
                                 .options(selectinload(WorkOrder.events)))
    if order is None:
        raise NotFound(f"no work order {order_id}", field="id")
    return order


async def follow_up_queue(session: AsyncSession, limit: int = 200) -> list[WorkOrder]:
    """Orders whose receipt the centre approved and whose elder is to be called back, longest waiting first."""
    return list((await session.scalars(
        select(WorkOrder).where(WorkOrder.status == WorkOrderStatus.FOLLOW_UP)
        .order_by(WorkOrder.updated_at, WorkOrder.id).limit(limit))).all())
