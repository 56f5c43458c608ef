"""Schemas of the audit-log API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from callcenter.api.schemas import Instant, Page, PageQuery, ResponseSchema

Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class AuditEntryOut(ResponseSchema):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_label: str
    action: str
    target_type: str | None
    target_id: str | None
    source_ip: str | None
    details: dict[str, Any]


class AuditPage(Page):
    items: list[AuditEntryOut]


class AuditQuery(PageQuery):
    action: Word | None = Field(None, description="exact, or a prefix ending in '.' (e.g. 'spy.' or 'recording.')")
    actor: Word | None = Field(None, description="the actor's user name")
    target_type: Word | None = None
    target_id: Word | None = None
    since: Instant | None = Field(None, description="from this time (inclusive)")
    until: Instant | None = Field(None, description="before this time")
