"""Response and query schemas of work orders and their event trail (seed 4.2.4, 6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AwareDatetime, Field, field_validator

from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, text
from callcenter.orders.models import WorkOrderKind, WorkOrderStatus
from callcenter.providers.models import ServiceType


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
    service: ServiceType | None = Field(description="the service needed")
    provider_id: int | None = Field(description="the provider chosen for it")
    latitude: float | None
    longitude: float | None
    created_by_id: int | None
    due_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    legal_hold: bool = Field(description="a legal hold keeps the log and recordings of this order's calls from "
                                         "retention; details at /api/v1/work-orders/{id}/legal-hold")


class WorkOrderDetail(WorkOrderOut):
    events: list[WorkOrderEventOut]


class WorkOrderPage(Page):
    items: list[WorkOrderOut]


class WorkOrderQuery(PageQuery):
    elder_id: int | None = Field(None, ge=1)
    status: WorkOrderStatus | None = None
    kind: WorkOrderKind | None = None


class WorkOrderUpdate(RequestSchema):
    """What an agent completes during the call. ``version`` is the one the agent read (optimistic locking)."""

    version: int = Field(ge=1, description="the order's version as read; a stale one is refused with 409")
    kind: WorkOrderKind | None = None
    title: text(200) | None = None  # type: ignore[valid-type]
    description: text(4000, min_length=0) | None = None  # type: ignore[valid-type]
    priority: int | None = Field(None, ge=1, le=5)
    location_text: text(300) | None = None  # type: ignore[valid-type]
    service: ServiceType | None = None
    provider_id: int | None = Field(None, ge=1, description="must offer the order's service")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    due_at: AwareDatetime | None = None

    @field_validator("kind", "title", "priority")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    def changes(self) -> dict[str, object]:
        """Only the fields the request names (an omitted field is left as it is)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "version"}
