"""Response and query schemas of recordings (metadata only: the audio is its own route)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from callcenter.api.schemas import Instant, Page, PageQuery, QuerySchema, RequestSchema, ResponseSchema, RowId, text
from callcenter.audit.schemas import AuditEntryOut


class RecordingOut(ResponseSchema):
    id: int
    serial_number: str = Field(description="the recording serial number quoted on the call log")
    call_id: int | None
    audio_format: str = Field(description="e.g. ogg/opus; the audio is at /api/v1/recordings/{id}/audio")
    duration_seconds: float | None
    size_bytes: int | None
    sha256: str | None = Field(description="SHA-256 of the stored audio, hex")
    created_at: dt.datetime
    expires_at: dt.datetime
    legal_hold: bool


class RecordingCall(ResponseSchema):
    """The call a recording belongs to, as an auditor searching the library needs to see it."""

    kind: str
    caller_number: str | None
    callee_number: str | None
    elder_id: int | None
    elder_name: str | None
    agent: str | None
    queue: str | None
    started_at: dt.datetime


class RecordingItem(RecordingOut):
    call: RecordingCall | None


class RecordingPage(Page):
    items: list[RecordingItem]


class RecordingQuery(PageQuery):
    call_id: RowId | None = Field(None, description="only the recordings of this call")
    since: Instant | None = Field(None, description="recorded at or after this time")
    until: Instant | None = Field(None, description="recorded before this time")
    elder_id: RowId | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9]{3,20}$")] | None = Field(
        None, description="the caller's or the called number")
    agent: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = Field(
        None, description="the answering agent's user name")
    queue: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    work_order_id: RowId | None = Field(None, description="recordings of the call the order was raised on")
    sos: bool | None = Field(None, description="true: SOS calls only; false: all but SOS")


class AudioQuery(QuerySchema):
    reason: text(200, min_length=4) = Field(  # type: ignore[valid-type]
        description="why you listen (complaint review, quality check…): written to the audit log")
    download: bool = Field(False, description="as an attachment; needs the permission to download")


class PlaybackRequest(RequestSchema):
    reason: text(200, min_length=4) = Field(description="why you listen: written to the audit log")  # type: ignore[valid-type]
    download: bool = False


class PlaybackLink(ResponseSchema):
    url: str = Field(description="stream (or download) from here, with byte ranges, until expires_at")
    expires_at: dt.datetime


class StreamQuery(QuerySchema):
    grant: text(300) = Field(description="the signed grant of a playback link")  # type: ignore[valid-type]


class AccessList(ResponseSchema):
    items: list[AuditEntryOut]
