"""Responder lists and cascades.

An elder's responders are an ordered list of their contacts (relatives, the paired social worker or volunteer,
the doctor), each with a channel (call, SMS or both), how long the cascade waits for them before it also calls
the next, and how long they take to get there. A cascade is one run of that list for one alarm or order; each
person it reaches out to is a ``CascadeCall`` with what they pressed and when.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow


class ResponderChannel(enum.StrEnum):
    CALL = "call"
    SMS = "sms"
    BOTH = "both"


class Responder(Base):
    __tablename__ = "responders"
    __table_args__ = (UniqueConstraint("elder_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1 is called first
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[ResponderChannel] = mapped_column(str_enum(ResponderChannel, "responder_channel"))
    wait_seconds: Mapped[int] = mapped_column(Integer)  # before the next responder is also called
    eta_minutes: Mapped[int] = mapped_column(Integer)  # how long they usually take to reach the elder
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CascadeReason(enum.StrEnum):
    ALARM = "alarm"
    UNANSWERED_SOS = "unanswered_sos"
    MISSED_CHECKIN = "missed_checkin"


class CascadeState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # no new responder is called; a call under way goes on
    ACCEPTED = "accepted"  # someone is on the way
    EXHAUSTED = "exhausted"  # nobody accepted: escalated to the centre
    STOPPED = "stopped"  # by an agent


OPEN_CASCADE_STATES = (CascadeState.RUNNING, CascadeState.PAUSED)


class Cascade(Base):
    __tablename__ = "cascades"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id", ondelete="SET NULL"), index=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    reason: Mapped[CascadeReason] = mapped_column(str_enum(CascadeReason, "cascade_reason"))
    state: Mapped[CascadeState] = mapped_column(str_enum(CascadeState, "cascade_state"), index=True)
    steps: Mapped[int] = mapped_column(Integer)  # how many responders the run has
    next_position: Mapped[int] = mapped_column(Integer, default=1)  # the next responder to reach out to
    # When the cascade also calls the next responder if the current one has not answered by then.
    step_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_by: Mapped[str | None] = mapped_column(String(100))  # the responder's name, shown to the agent
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    eta_minutes: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CascadeCallState(enum.StrEnum):
    CALLING = "calling"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TO_AGENT = "to_agent"  # pressed for the centre's agent
    NO_KEY = "no_key"  # answered, pressed nothing
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"  # someone else accepted, or the cascade was stopped, before this one answered
    SMS_ONLY = "sms_only"  # an SMS-only step: told, not called


class CascadeCall(Base):
    __tablename__ = "cascade_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    cascade_id: Mapped[int] = mapped_column(ForeignKey("cascades.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[ResponderChannel] = mapped_column(str_enum(ResponderChannel, "responder_channel"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_jobs.id", ondelete="SET NULL"), index=True)
    state: Mapped[CascadeCallState] = mapped_column(str_enum(CascadeCallState, "cascade_call_state"))
    eta_minutes: Mapped[int] = mapped_column(Integer)
    key: Mapped[str | None] = mapped_column(String(4))
    key_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
