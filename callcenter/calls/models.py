from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow

# The recordings a call lists (kept after their audio is deleted) must be in the metadata wherever calls are used.
from callcenter.recordings.models import Recording
from callcenter.retention.columns import LegalHoldColumns


class CallKind(enum.StrEnum):
    SOS = "sos"  # red button: emergency
    HOTLINE = "hotline"  # 12349 and the green button
    OUTBOUND = "outbound"  # care calls, callbacks, conference legs
    INTERNAL = "internal"
    OTHER = "other"


class Disposition(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    ABANDONED = "abandoned"  # the caller hung up before anyone answered
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


class IdentifiedBy(enum.StrEnum):
    DEVICE = "device"  # the authenticated SIP endpoint of a registered device
    CALLER_ID = "caller_id"  # a registered phone number of an elder or device
    NONE = "none"


class Call(LegalHoldColumns, Base):
    """One call as the caller experiences it: all channels sharing an Asterisk linkedid."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[CallKind] = mapped_column(str_enum(CallKind, "call_kind"), default=CallKind.OTHER)
    # An outbound call the engine placed (callcenter.outbound): cascade, notification, callback, care_call, reminder.
    purpose: Mapped[str | None] = mapped_column(String(24))
    caller_number: Mapped[str | None] = mapped_column(String(64), index=True)
    caller_name: Mapped[str | None] = mapped_column(String(100))
    callee_number: Mapped[str | None] = mapped_column(String(64), index=True)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="SET NULL"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), index=True)
    identified_by: Mapped[IdentifiedBy] = mapped_column(str_enum(IdentifiedBy, "identified_by"),
                                                        default=IdentifiedBy.NONE)
    queue: Mapped[str | None] = mapped_column(String(64))
    # Seconds from entering the queue to an agent answering (seed 5.10 call record; GB/T 33358's 15 s target).
    queue_wait_seconds: Mapped[float | None] = mapped_column(Float)
    # "ami" when logged live; "cdr" when reconciled from Asterisk's CDR after the platform was down.
    source: Mapped[str] = mapped_column(String(8), default="ami", server_default="ami")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    recording_serial: Mapped[str | None] = mapped_column(String(64), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disposition: Mapped[Disposition] = mapped_column(str_enum(Disposition, "disposition"),
                                                     default=Disposition.IN_PROGRESS, index=True)
    hangup_cause: Mapped[int | None] = mapped_column(Integer)

    legs: Mapped[list[CallLeg]] = relationship(back_populates="call", order_by="CallLeg.started_at")
    # Its recordings, those whose audio retention deleted too (deleted_at): the log shows they existed.
    recordings: Mapped[list[Recording]] = relationship(viewonly=True, order_by=Recording.id)


class CallLeg(Base):
    """One Asterisk channel of a call."""

    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(128))
    caller_number: Mapped[str | None] = mapped_column(String(64))
    callee_number: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_text: Mapped[str | None] = mapped_column(String(100))

    call: Mapped[Call] = relationship(back_populates="legs")
