"""The care calls' request and response bodies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from callcenter.api.schemas import Note, Page, PageQuery, QuerySchema, RequestSchema, ResponseSchema, RowId, text
from callcenter.care_calls.models import BirthdayCalendar, CareOutcome, Recurrence

Weekday = Annotated[int, Field(ge=1, le=7)]  # ISO: 1 Monday .. 7 Sunday
_WINDOW = "HH:MM, the centre's local time (CC_TIMEZONE); the window ends after it starts, within one day"


class ScheduleCreate(RequestSchema):
    recurrence: Recurrence = Field(description="daily, weekly or custom check-ins; birthday or festivals greetings")
    window_start: str = Field(max_length=5, description=_WINDOW)
    window_end: str = Field(max_length=5, description=_WINDOW)
    weekdays: list[Weekday] = Field(default_factory=list, max_length=7, description="weekly: 1 (Monday) .. 7 (Sunday)")
    dates: list[dt.date] = Field(default_factory=list, max_length=366, description="custom: the dates, none past")
    festivals: list[str] | None = Field(None, max_length=10, description=(
        "festivals: spring_festival, lantern, dragon_boat, mid_autumn, double_ninth (all when absent)"))
    birthday_calendar: BirthdayCalendar | None = Field(None, description="birthday: solar or lunar (lunar when absent)")
    starts_on: dt.date | None = Field(None, description="today when absent; never in the past")
    ends_on: dt.date | None = None
    active: bool = True
    note: text(200) | None = None  # type: ignore[valid-type]


class ScheduleUpdate(RequestSchema):
    """Only the fields given change; the whole schedule is checked again."""

    window_start: str | None = Field(None, max_length=5, description=_WINDOW)
    window_end: str | None = Field(None, max_length=5, description=_WINDOW)
    weekdays: list[Weekday] | None = Field(None, max_length=7)
    dates: list[dt.date] | None = Field(None, max_length=366)
    festivals: list[str] | None = Field(None, max_length=10)
    birthday_calendar: BirthdayCalendar | None = None
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    active: bool | None = Field(None, description="false pauses the schedule")
    note: text(200) | None = None  # type: ignore[valid-type]


class ScheduleOut(ResponseSchema):
    id: int
    elder_id: int
    recurrence: Recurrence
    weekdays: list[int]
    dates: list[str]
    festivals: list[str]
    birthday_calendar: BirthdayCalendar | None
    window_start: str
    window_end: str
    starts_on: dt.date
    ends_on: dt.date | None
    active: bool
    automatic: bool
    note: str | None
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ScheduleList(ResponseSchema):
    items: list[ScheduleOut]


class EnableLivingAlone(RequestSchema):
    window_start: str | None = Field(None, max_length=5, description=f"{_WINDOW}; CC_CARE_CALLS_WINDOW when absent")
    window_end: str | None = Field(None, max_length=5, description=_WINDOW)


class EnabledOut(ResponseSchema):
    created: int = Field(description="daily check-ins made")
    schedule_ids: list[int]
    without_phone: list[int] = Field(description="elders left out: no dialable number on file")


class CareRecordOut(ResponseSchema):
    id: int
    elder_id: int
    schedule_id: int | None
    local_date: dt.date
    kind: str = Field(description="check_in or greeting")
    occasion: str | None = Field(description="a greeting's: birthday, a festival")
    window_start: str
    window_end: str
    job_id: int | None
    outcome: CareOutcome
    digit: str | None
    attempts: int
    call_ids: list[int] = Field(description="each try's call, in order")
    planned_at: dt.datetime
    last_attempt_at: dt.datetime | None
    completed_at: dt.datetime | None
    work_order_id: int | None = Field(description="a missed check-in's emergency order")
    handled_by: str | None
    handled_at: dt.datetime | None
    handling_note: str | None
    callback_call_ids: list[int] = Field(description="the agents' calls back from the care-calls page")


class CareRecordPage(Page):
    items: list[CareRecordOut]


class CareRecordQuery(PageQuery):
    elder_id: RowId | None = None
    outcome: CareOutcome | None = None
    exceptions: bool | None = Field(None, description="true: call-backs, spoken answers and missed check-ins only")
    open: bool | None = Field(None, description="true: exceptions nobody has dealt with yet")
    date_from: dt.date | None = Field(None, alias="from")
    date_to: dt.date | None = Field(None, alias="to")


class DayQuery(QuerySchema):
    date: dt.date | None = Field(None, description="the centre's local day; today when absent")


class DayItem(ResponseSchema):
    record_id: int | None = Field(description="None: due that day and not planned yet")
    schedule_id: int | None
    elder_id: int
    elder_name: str
    kind: str
    occasion: str | None
    window_start: str
    window_end: str
    outcome: str = Field(description="a care record's outcome, or due (not planned yet)")
    exception: bool = Field(description="an agent must follow it up")
    attempts: int
    last_attempt_at: dt.datetime | None
    completed_at: dt.datetime | None
    work_order_id: int | None
    work_order_number: str | None
    handled_by: str | None
    handled_at: dt.datetime | None
    handling_note: str | None
    callback_call_ids: list[int]


class DayOut(ResponseSchema):
    date: dt.date
    items: list[DayItem]
    counts: dict[str, int] = Field(description="items by outcome")


class HandleBody(RequestSchema):
    note: Note = Field(description="what was done: who was reached, what they said")


class CareCallOut(ResponseSchema):
    record_id: int
    call_id: int
    linkedid: str
    extension: str = Field(description="your phone, rung first")
    number: str = Field(description="the elder's number on file, dialled once you answer")
    started_at: dt.datetime
