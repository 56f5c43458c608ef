"""Care-call schedules and the care records of their calls (issue 16, seed 5.8).

A schedule says when an elder is called: a check-in (daily, on some weekdays, or on listed dates) or a greeting
(the elder's birthday, solar or lunar, and the festivals of the Chinese calendar), each in a window of the
centre's local day. The planner turns each schedule due today into one care record and one outbound job; the
record is unique per schedule and local date, so a day's call is never planned twice, restarts included. The
record then holds what happened: the outcome, the calls, and who dealt with an exception.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow


class Recurrence(enum.StrEnum):
    DAILY = "daily"  # a check-in every day
    WEEKLY = "weekly"  # a check-in on the listed weekdays (1 Monday .. 7 Sunday)
    CUSTOM = "custom"  # a check-in on the listed dates
    BIRTHDAY = "birthday"  # a greeting on the elder's birthday (solar or lunar, from their date of birth)
    FESTIVALS = "festivals"  # a greeting on the listed festivals of the Chinese calendar


CHECK_INS = frozenset({Recurrence.DAILY, Recurrence.WEEKLY, Recurrence.CUSTOM})
GREETINGS = frozenset({Recurrence.BIRTHDAY, Recurrence.FESTIVALS})


class BirthdayCalendar(enum.StrEnum):
    SOLAR = "solar"  # 阳历生日
    LUNAR = "lunar"  # 农历生日, as most elders keep it


class CareOutcome(enum.StrEnum):
    PLANNED = "planned"  # the call is queued or ringing
    WELL = "well"  # pressed 1: all is well
    CALL_BACK = "call_back"  # pressed 2: wants a call back (an exception for the agents)
    AGENT = "agent"  # pressed 0: put through to the hotline queue at once
    NO_KEY = "no_key"  # answered without a key (a spoken answer): treated as "call back" (an exception)
    MISSED = "missed"  # never answered after every try: escalated (a work order, the contact cascade)
    GREETED = "greeted"  # a greeting was heard
    UNANSWERED = "unanswered"  # a greeting nobody picked up: nothing more is done
    CANCELLED = "cancelled"  # the call was stopped before it was reached


# Outcomes an agent must follow up: the page lists them until someone records how they were handled.
EXCEPTIONS = frozenset({CareOutcome.CALL_BACK, CareOutcome.NO_KEY, CareOutcome.MISSED})


class CareSchedule(Base):
    __tablename__ = "care_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    recurrence: Mapped[Recurrence] = mapped_column(str_enum(Recurrence, "care_recurrence"))
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)  # weekly: ISO weekdays, 1 Monday .. 7 Sunday
    dates: Mapped[list[str]] = mapped_column(JSON, default=list)  # custom: ISO dates
    festivals: Mapped[list[str]] = mapped_column(JSON, default=list)  # festivals: care_calls.lunar.Festival values
    birthday_calendar: Mapped[BirthdayCalendar | None] = mapped_column(
        str_enum(BirthdayCalendar, "care_birthday_calendar"))
    window_start: Mapped[str] = mapped_column(String(5))  # "HH:MM", the centre's local time
    window_end: Mapped[str] = mapped_column(String(5))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: paused, nothing is planned
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)  # made by CC_CARE_CALLS_AUTO / "enable for all"
    note: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CareRecord(Base):
    """One planned care call of one schedule on one local day, and what came of it."""

    __tablename__ = "care_records"
    __table_args__ = (
        UniqueConstraint("schedule_id", "local_date", name="uq_care_records_schedule_day"),
        Index("ix_care_records_local_date_outcome", "local_date", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    # Kept when the schedule is deleted (SET NULL); the unique key then no longer applies to the old rows.
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("care_schedules.id", ondelete="SET NULL"))
    local_date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # "check_in" or "greeting"
    occasion: Mapped[str | None] = mapped_column(String(32))  # a greeting's: "birthday", "mid_autumn", …
    window_start: Mapped[str] = mapped_column(String(5))
    window_end: Mapped[str] = mapped_column(String(5))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_jobs.id", ondelete="SET NULL"), index=True)
    outcome: Mapped[CareOutcome] = mapped_column(str_enum(CareOutcome, "care_outcome"), default=CareOutcome.PLANNED)
    digit: Mapped[str | None] = mapped_column(String(4))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    call_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # each try's call-log row, in order
    planned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A missed check-in's escalation: the work order raised for it.
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="SET NULL"))
    # An exception dealt with: who, when, how; and the agents' calls back to the elder from the page.
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    handled_by: Mapped[str | None] = mapped_column(String(100))
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    handling_note: Mapped[str | None] = mapped_column(Text)
    callback_call_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
