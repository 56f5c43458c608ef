"""Response and query schemas of work orders and their event trail (seed 4.2.4, 6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from callcenter.api.schemas import Page, PageQuery, ResponseSchema
from callcenter.orders.models import WorkOrderKind, WorkOrderStatus


class WorkOrderEventOut(ResponseSchema):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_label: str
    action: str
    from_status: str | None
    to_status: str | None
    call_id: int | None
    details: dict[str, Any]


class WorkOrderOut(ResponseSchema):
    id: int
    number: str
    kind: WorkOrderKind
    status: WorkOrderStatus
    priority: int = Field(description="1 most urgent … 5 least")
    elder_id: int | None
    call_id: int | None
    device_id: int | None
    title: str
    description: str | None
    location_text: str | None
    latitude: float | None
    longitude: float | None
    created_by_id: int | None
    due_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class WorkOrderDetail(WorkOrderOut):
    events: list[WorkOrderEventOut]


class WorkOrderPage(Page):
    items: list[WorkOrderOut]


class WorkOrderQuery(PageQuery):
    elder_id: int | None = Field(None, ge=1)
    status: WorkOrderStatus | None = None
    kind: WorkOrderKind | None = None
