"""SMS messages the platform sends (issue 16): one row per message, from queued to delivered or failed, with its
links (elder, alarm, work order) and what the SMSC or the HTTP gateway said about it."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.alarms import models as _alarms  # noqa: F401 - the tables the foreign keys point at
from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.elders import models as _elders  # noqa: F401
from callcenter.orders import models as _orders  # noqa: F401


class Purpose(enum.StrEnum):
    CASCADE = "cascade"  # a responder of a contact cascade is asked to go
    CARE_CALL = "care_call"  # about a proactive care call (a missed check-in)
    ALARM_NOTICE = "alarm_notice"  # the family told of an alarm
    HELP_COMING = "help_coming"  # someone accepted and is on the way
    REMINDER = "reminder"  # medication, a measurement, a visit


class MessageState(enum.StrEnum):
    QUEUED = "queued"  # committed, waiting for its (next) attempt
    SUBMITTED = "submitted"  # the SMSC or gateway took it; no final receipt yet
    DELIVERED = "delivered"  # the receipt says it reached the phone
    FAILED = "failed"  # refused on every attempt, refused for good, or an undeliverable receipt
    EXPIRED = "expired"  # the network gave up (receipt EXPIRED), or no receipt came in CC_SMS_RECEIPT_HOURS


FINAL_STATES = frozenset({MessageState.DELIVERED, MessageState.FAILED, MessageState.EXPIRED})


class SmsMessage(Base):
    """One SMS. The recipient's number is kept as elders' contacts' numbers are (plain: they are dialled and
    matched); the body is the rendered template, which carries no more than a masked name (``templates``)."""

    __tablename__ = "sms_messages"
    # The SMSC's (or gateway's) id finds the row a delivery receipt is about, also after a restart.
    __table_args__ = (UniqueConstraint("channel", "provider_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # smpp, http, or off (refused: SMS was off)
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, "sms_purpose"))
    template: Mapped[str] = mapped_column(String(64))  # the catalogue key (strings/sms.<language>.json)
    language: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    # The template's values as shown in the body (names masked): what a template-based gateway is sent.
    params: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id", ondelete="RESTRICT"), index=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="RESTRICT"),
                                                      index=True)
    state: Mapped[MessageState] = mapped_column(str_enum(MessageState, "sms_state"), default=MessageState.QUEUED,
                                                index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(65))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    receipt_status: Mapped[str | None] = mapped_column(String(16))  # DELIVRD, UNDELIV, EXPIRED, REJECTD, …
    receipt_error: Mapped[str | None] = mapped_column(String(16))  # the network's error code in the receipt
    receipt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the receipt's "done date"
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
