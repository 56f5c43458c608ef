"""Response and query schemas of the call log (seed 5.10: caller, callee, recording serial, call record)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from callcenter.api.schemas import Instant, Page, PageQuery, ResponseSchema, RowId
from callcenter.calls.models import CallKind, Disposition, IdentifiedBy


class CallLegOut(ResponseSchema):
    id: int
    uniqueid: str
    channel: str
    caller_number: str | None
    callee_number: str | None
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    hangup_cause: int | None
    hangup_cause_text: str | None


class CallOut(ResponseSchema):
    id: int
    linkedid: str
    kind: CallKind
    purpose: str | None = None  # an outbound engine's call: cascade, notification, callback, care_call, reminder
    caller_number: str | None
    caller_name: str | None
    callee_number: str | None
    elder_id: int | None
    device_id: int | None
    identified_by: IdentifiedBy
    queue: str | None
    queue_wait_seconds: float | None
    agent_id: int | None
    recording_serial: str | None
    source: str  # "ami" (logged live) or "cdr" (reconciled after the platform was down)
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    disposition: Disposition
    hangup_cause: int | None
    legal_hold: bool = Field(description="a legal hold keeps this call's log and recordings from retention; "
                                         "details at /api/v1/calls/{id}/legal-hold")


class CallRecordingOut(ResponseSchema):
    """A recording of the call, also after retention deleted its audio (``deleted_at``)."""

    id: int
    serial_number: str
    created_at: dt.datetime
    expires_at: dt.datetime
    deleted_at: dt.datetime | None = Field(description="when retention deleted the audio; null while stored")


class CallDetail(CallOut):
    legs: list[CallLegOut]
    recordings: list[CallRecordingOut]


class CallPage(Page):
    items: list[CallOut]


class CallQuery(PageQuery):
    elder_id: RowId | None = None
    since: Instant | None = Field(None, description="calls started at or after; ISO 8601 with offset")
    until: Instant | None = Field(None, description="calls started before; ISO 8601 with offset")
    kind: CallKind | None = None

    @model_validator(mode="after")
    def _ordered(self) -> CallQuery:
        if self.since and self.until and self.until <= self.since:
            raise ValueError("until must be after since")
        return self
