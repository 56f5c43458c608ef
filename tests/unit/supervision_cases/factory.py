"""Orders, providers and elders built directly in the database at controlled times, for the scan's tests."""

from __future__ import annotations

import datetime as dt
import secrets
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.elders.models import Elder
from callcenter.orders import deadlines
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from callcenter.orders.services import raise_order
from callcenter.providers.models import ServiceProvider

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def provider(session: AsyncSession, name: str | None = None) -> ServiceProvider:
    row = ServiceProvider(name=name or f"幸福家政-{secrets.token_hex(3)}", services=["cleaning"])
    session.add(row)
    await session.flush()
    return row


async def elder(session: AsyncSession, name: str = "张桂兰") -> Elder:
    row = Elder(full_name=name)
    session.add(row)
    await session.flush()
    return row


async def order(session: AsyncSession, kind: WorkOrderKind, received_at: dt.datetime, *,
                status: WorkOrderStatus = WorkOrderStatus.OPEN, provider_id: int | None = None,
                elder_id: int | None = None, about_provider_id: int | None = None,
                founded: bool | None = None) -> WorkOrder:
    """An order received at ``received_at`` with the deadline its kind gets (a complaint on the working
    calendar); a complaint order carries its complaint row."""
    complaint = None
    if kind is WorkOrderKind.COMPLAINT:
        complaint = {"about_provider_id": about_provider_id, "founded": founded}
    row = await raise_order(session, kind=kind, actor_label="agent01", elder_id=elder_id, provider_id=provider_id,
                            complaint=complaint, now=received_at, tz=SHANGHAI)
    assert row.due_at == deadlines.due_at_for(kind, received_at, SHANGHAI)
    row.status = status
    await session.flush()
    return row


async def trail(session: AsyncSession, order_id: int) -> list[WorkOrderEvent]:
    return list((await session.scalars(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order_id)
                                       .order_by(WorkOrderEvent.id))).all())
