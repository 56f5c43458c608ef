"""The schemas of the reminders' REST API (/api/v1/elders/{id}/medication-reminders, /api/v1/reminders)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, field_validator

from callcenter.api.schemas import QuerySchema, RequestSchema, ResponseSchema, RowId, refuse_null, text
from callcenter.reminders.models import Channel, Days, ReminderKind, ReminderOutcome

Medication = text(100)
Label = text(60)
# A time is checked by the service (422 naming ``times``), so a bad one is refused the same way from every writer.
Times = Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=12)]
Weekdays = Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(max_length=7)]


class ReminderCreate(RequestSchema):
    medication: Medication = Field(description="the medicine, as the elder knows it; health data: sealed, never "  # type: ignore[valid-type]
                                               "in a call, an SMS or a log")
    times: Times = Field(description="times of the centre's local day, HH:MM (1 to 12)")
    days: Days = Days.DAILY
    weekdays: Weekdays = Field(default_factory=list, description="days `weekdays`: 1 Monday .. 7 Sunday")
    channel: Channel = Channel.CALL
    active: bool = True
    sms_label: Label | None = Field(None, description="what the SMS calls it (default 服药提醒); the SMS must "  # type: ignore[valid-type]
                                                      "fit one message")


class ReminderUpdate(RequestSchema):
    medication: Medication | None = None  # type: ignore[valid-type]
    times: Times | None = None
    days: Days | None = None
    weekdays: Weekdays | None = None
    channel: Channel | None = None
    active: bool | None = None
    sms_label: Label | None = None  # type: ignore[valid-type]

    _no_nulls = field_validator("medication", "times", "days", "weekdays", "channel", "active",
                                mode="wrap")(refuse_null)


class ReminderOut(ResponseSchema):
    id: int
    elder_id: int
    medication: str | None
    sms_label: str | None
    times: list[str]
    days: Days
    weekdays: list[int]
    channel: Channel
    active: bool
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    masked_fields: list[str] = Field(default_factory=list, description="fields left out for the reader's role")


class ReminderList(ResponseSchema):
    items: list[ReminderOut]


class LogQuery(QuerySchema):
    elder_id: RowId | None = None
    date: dt.date | None = Field(None, description="a local day of the centre (today by default)")


class LogOut(ResponseSchema):
    id: int
    kind: ReminderKind
    elder_id: int
    source_id: int
    local_date: dt.date
    due_time: str
    channel: Channel
    job_id: int | None
    sms_id: int | None
    outcome: ReminderOutcome
    digit: str | None
    attempts: int
    call_ids: list[int]
    planned_at: dt.datetime
    completed_at: dt.datetime | None


class LogList(ResponseSchema):
    date: dt.date
    items: list[LogOut]
    counts: dict[str, int]
