"""Legal holds over the REST API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from callcenter.api.schemas import QuerySchema, RequestSchema, ResponseSchema, text


class LegalHoldIn(RequestSchema):
    reason: text(500) = Field(description="why: the case, the court order, the complaint")  # type: ignore[valid-type]


class LegalHoldRelease(QuerySchema):
    reason: text(500) = Field(description="why the hold is lifted")  # type: ignore[valid-type]


class LegalHoldOut(ResponseSchema):
    target_type: Literal["call", "work_order"]
    target_id: int
    legal_hold: bool
    reason: str | None
    held_by: str | None = Field(description="who placed the hold (user name at the time)")
    held_at: dt.datetime | None
    call_ids: list[int] = Field(description="the calls whose logs and recordings this hold protects while set")
    recording_ids: list[int] = Field(description="their recordings whose audio is still stored")
