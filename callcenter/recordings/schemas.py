"""Response and query schemas of recordings (metadata only: the audio is its own route)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from callcenter.api.schemas import Page, PageQuery, ResponseSchema


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


class RecordingPage(Page):
    items: list[RecordingOut]


class RecordingQuery(PageQuery):
    call_id: int | None = Field(None, ge=1, description="only the recordings of this call")
