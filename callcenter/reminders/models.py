"""Medication reminders and the reminder log (issue 16).

A medication reminder says when an elder is reminded to take a medicine: times of the local day, every day or on
some weekdays, by call, SMS or both. The medicine's name and the SMS label are health data: sealed at rest like the
health record's (``Sealed``), never in a prompt, an SMS, the audit log or the logs.

The reminder log holds one row per reminder made: what (kind, elder, source, the local day and time it was due), the
outbound job and the SMS, and the outcome. It is unique per (kind, source, local date, due time), so the planner
makes each reminder once whatever its rounds, restarts or processes.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed


class Days(enum.StrEnum):
    DAILY = "daily"  # every day
    WEEKDAYS = "weekdays"  # the listed ISO weekdays (1 Monday .. 7 Sunday)


class Channel(enum.StrEnum):
    CALL = "call"
    SMS = "sms"
    BOTH = "both"


class ReminderKind(enum.StrEnum):
    MEDICATION = "medication"  # source: a medication reminder
    MEASUREMENT = "measurement"  # source: the elder (one call a day for all their plans' missing measurements)
    VISIT = "visit"  # source: the chronic-disease plan whose follow-up visit is tomorrow


class ReminderOutcome(enum.StrEnum):
    PLANNED = "planned"  # the call is queued or ringing
    ACKNOWLEDGED = "acknowledged"  # pressed 1
    ANSWERED_NO_KEY = "answered_no_key"  # picked up, no key
    UNANSWERED = "unanswered"  # every try unanswered, or its time passed first (quiet hours, a full engine)
    SMS_SENT = "sms_sent"  # by SMS only: queued with the notifications service
    FAILED = "failed"  # could not be made (no dialable number, the SMS refused)
    CANCELLED = "cancelled"  # the reminder was changed, paused or deleted before its call was reached


class MedicationReminder(Base):
    __tablename__ = "medication_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    medication: Mapped[str] = mapped_column(Sealed("medication_reminders.medication"))
    # What the SMS calls the reminder (e.g. 早饭后的药); sealed like the medicine: staff may write a name in it.
    sms_label: Mapped[str | None] = mapped_column(Sealed("medication_reminders.sms_label"))
    times: Mapped[list[str]] = mapped_column(JSON, default=list)  # "HH:MM", the centre's local time, sorted
    days: Mapped[Days] = mapped_column(str_enum(Days, "medication_reminder_days"))
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "reminder_channel"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReminderLog(Base):
    """One reminder made, and what came of it."""

    __tablename__ = "reminder_log"
    __table_args__ = (
        UniqueConstraint("kind", "source_id", "local_date", "due_time", name="uq_reminder_log_source_due"),
        Index("ix_reminder_log_local_date_elder_id", "local_date", "elder_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ReminderKind] = mapped_column(str_enum(ReminderKind, "reminder_kind"))
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(Integer)  # the medication reminder, the elder, or the plan (see kind)
    local_date: Mapped[dt.date] = mapped_column(Date)
    due_time: Mapped[str] = mapped_column(String(5))  # "HH:MM" local: the medication's time, or the window's start
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "reminder_channel"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_jobs.id", ondelete="SET NULL"), index=True)
    sms_id: Mapped[int | None] = mapped_column(ForeignKey("sms_messages.id", ondelete="SET NULL"))
    outcome: Mapped[ReminderOutcome] = mapped_column(str_enum(ReminderOutcome, "reminder_outcome"),
                                                     default=ReminderOutcome.PLANNED)
    digit: Mapped[str | None] = mapped_column(String(4))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    call_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    planned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Why a reminder was not made, the plans and measures it is about: health data, sealed.
    details: Mapped[dict[str, Any]] = mapped_column(Sealed("reminder_log.details", json=True))
