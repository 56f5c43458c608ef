"""Outbound jobs and their attempts.

A job is one person to reach for one purpose (a responder of a cascade, an elder's check-in, a reminder): it is
queued with a priority, dialled in its time window, retried with backoff, and ends done (the call was answered and
its script ran), failed (every attempt unanswered), expired (its window closed first) or cancelled. Each dial is an
attempt whose channel id is stored before the Originate is sent, so a dial whose fate is unknown (the AMI link
dropped with it in flight) is settled from the call log instead of being dialled again.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.config import OUTBOUND_PURPOSES
from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow


class OutboundPurpose(enum.StrEnum):
    """Why the centre calls (the call log's ``purpose``); the names are CC_OUTBOUND_CONCURRENCY's keys."""

    CASCADE = "cascade"  # a responder of an alarm's contact cascade
    NOTIFICATION = "notification"  # a message: help is coming, an alert to family
    CALLBACK = "callback"  # calling someone back
    CARE_CALL = "care_call"  # a proactive check-in call (5.8)
    REMINDER = "reminder"  # medication, a missing measurement, a visit tomorrow


assert tuple(OutboundPurpose) == OUTBOUND_PURPOSES, "config.OUTBOUND_PURPOSES names the same purposes"


class JobState(enum.StrEnum):
    QUEUED = "queued"  # waiting for its time (a retry, its window) or a free channel
    DIALLING = "dialling"  # an attempt is ringing or talking
    DONE = "done"  # answered, the script ran
    FAILED = "failed"  # every attempt went unanswered
    EXPIRED = "expired"  # its window (expires_at) closed before it was reached
    CANCELLED = "cancelled"


OPEN_JOB_STATES = (JobState.QUEUED, JobState.DIALLING)


class AttemptState(enum.StrEnum):
    DIALLING = "dialling"  # the Originate is sent (or about to be)
    UNCERTAIN = "uncertain"  # its fate unknown (the AMI link dropped): settled from the call log, never re-sent
    ANSWERED = "answered"  # picked up; the script is running
    COMPLETED = "completed"  # answered and ended
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # refused, congested, or no channel could be made
    NEVER_RANG = "never_rang"  # uncertain, and the call log shows it never reached Asterisk


IN_FLIGHT = (AttemptState.DIALLING, AttemptState.UNCERTAIN, AttemptState.ANSWERED)


class OutboundJob(Base):
    __tablename__ = "outbound_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[OutboundPurpose] = mapped_column(str_enum(OutboundPurpose, "outbound_purpose"), index=True)
    priority: Mapped[int] = mapped_column(Integer)  # lower first
    state: Mapped[JobState] = mapped_column(str_enum(JobState, "outbound_job_state"), default=JobState.QUEUED,
                                            index=True)
    # Who asked for it and is told of each attempt's end (a domain's name and its own id: a cascade step, …).
    owner: Mapped[str] = mapped_column(String(32))
    owner_ref: Mapped[int | None] = mapped_column(Integer, index=True)
    # What is dialled: digits through the trunk, or a device's own SIP endpoint.
    target: Mapped[str] = mapped_column(String(64))
    via_trunk: Mapped[bool] = mapped_column(Boolean, default=True)
    dial_basis: Mapped[str] = mapped_column(String(16))  # dial_policy.DialBasis: why this number may be dialled
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="SET NULL"), index=True)
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id", ondelete="SET NULL"), index=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="SET NULL"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    # What the called person hears and may press (outbound.script.Script as JSON).
    script: Mapped[dict[str, Any]] = mapped_column(JSON)
    ring_seconds: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    retry_seconds: Mapped[int] = mapped_column(Integer)
    retry_factor: Mapped[float] = mapped_column(Float, default=1.0)
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)  # CC_OUTBOUND_QUIET_HOURS applies
    window_start: Mapped[str | None] = mapped_column(String(5))  # "HH:MM", the centre's local time
    window_end: Mapped[str | None] = mapped_column(String(5))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(32))  # the choice made (accept, …), or why it ended
    digit: Mapped[str | None] = mapped_column(String(4))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OutboundAttempt(Base):
    __tablename__ = "outbound_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("outbound_jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, … within the job
    channel_id: Mapped[str] = mapped_column(String(64), unique=True)  # the Originate's ChannelId = the linkedid
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), index=True)
    state: Mapped[AttemptState] = mapped_column(str_enum(AttemptState, "outbound_attempt_state"), index=True)
    reason: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    digit: Mapped[str | None] = mapped_column(String(4))  # the key pressed (RFC 2833), read by the script
    digit_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    choice: Mapped[str | None] = mapped_column(String(32))  # what the key means in the script
