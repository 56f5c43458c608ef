"""Work orders: raising them and recording every step in their event trail (seed 4.2.4)."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.db.base import utcnow
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus

# 1 = most urgent. An SOS outranks everything; a complaint or consultation waits behind service needs.
DEFAULT_PRIORITY = {
    WorkOrderKind.EMERGENCY: 1,
    WorkOrderKind.DEVICE_FAULT: 2,
    WorkOrderKind.SERVICE_REQUEST: 3,
    WorkOrderKind.COMPLAINT: 3,
    WorkOrderKind.CONSULTATION: 4,
}
DEFAULT_TITLE = {
    WorkOrderKind.EMERGENCY: "紧急呼叫",
    WorkOrderKind.DEVICE_FAULT: "设备故障",
    WorkOrderKind.SERVICE_REQUEST: "服务请求",
    WorkOrderKind.COMPLAINT: "投诉",
    WorkOrderKind.CONSULTATION: "咨询",
}


def order_number(now: dt.datetime | None = None) -> str:
    """WO-YYYYMMDD-XXXXXXXX: sortable by day, unguessable within it."""
    now = now or utcnow()
    return f"WO-{now:%Y%m%d}-{secrets.token_hex(4).upper()}"


async def raise_order(session: AsyncSession, *, kind: WorkOrderKind, actor_label: str, elder_id: int | None = None,
                      call_id: int | None = None, device_id: int | None = None, title: str | None = None,
                      description: str | None = None, priority: int | None = None, actor_id: int | None = None,
                      location_text: str | None = None, latitude: float | None = None,
                      longitude: float | None = None, details: dict[str, object] | None = None) -> WorkOrder:
    """Create an open work order and its first trail entry in the caller's transaction."""
    order = WorkOrder(
        number=order_number(), kind=kind, status=WorkOrderStatus.OPEN,
        priority=priority if priority is not None else DEFAULT_PRIORITY[kind], elder_id=elder_id, call_id=call_id,
        device_id=device_id, title=title or DEFAULT_TITLE[kind], description=description,
        location_text=location_text, latitude=latitude, longitude=longitude, created_by_id=actor_id,
    )
    order.events = [WorkOrderEvent(actor_id=actor_id, actor_label=actor_label, action="created", from_status=None,
                                   to_status=WorkOrderStatus.OPEN.value, call_id=call_id, details=details or {})]
    session.add(order)
    await session.flush()
    return order
