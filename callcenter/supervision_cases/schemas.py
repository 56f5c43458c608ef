"""Schemas of the supervision cases API (督办)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from callcenter.api.schemas import Note, Page, PageQuery, RequestSchema, ResponseSchema, RowId
from callcenter.orders.models import WorkOrderStatus
from callcenter.supervision_cases.models import CaseReason, CaseStatus, UrgingMethod


class CaseQuery(PageQuery):
    status: CaseStatus | None = None
    reason: CaseReason | None = None
    provider_id: RowId | None = None
    unresolved: bool | None = Field(None, description="true: open and urging cases; false: resolved ones")


class UrgingCreate(RequestSchema):
    method: UrgingMethod = Field(description="call: the provider was phoned; message: a platform message")
    message: Note | None = Field(None, description="what was said or sent")  # type: ignore[valid-type]
    result: Note = Field(description="what came of it, e.g. the provider promised a visit by 18:00")  # type: ignore[valid-type]


class ResolveBody(RequestSchema):
    resolution: Note  # type: ignore[valid-type]


class UrgingOut(ResponseSchema):
    id: int
    at: dt.datetime
    method: UrgingMethod
    actor_id: int | None
    actor_label: str
    message: str | None
    result: str


class CaseOut(ResponseSchema):
    id: int
    number: str
    reason: CaseReason
    status: CaseStatus
    trigger_key: str = Field(description="what raised it, e.g. overdue:order:42; one case per trigger")
    work_order_id: int | None
    work_order_number: str | None = None
    work_order_status: WorkOrderStatus | None = None
    provider_id: int | None
    provider_name: str | None = None
    elder_id: int | None
    elder_name: str | None = None
    summary: str
    details: dict[str, Any] = Field(description="due_at / due_soon_at, the ratings, or the complaint orders "
                                                "(orders, window_start, window_end) — by reason")
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by_id: int | None
    resolution: str | None
    urging_count: int = 0


class CaseDetail(CaseOut):
    urgings: list[UrgingOut]


class CasePage(Page):
    items: list[CaseOut]
