from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow


class PartyRole(enum.StrEnum):
    ELDER = "elder"
    AGENT = "agent"
    EMERGENCY = "120"
    DOCTOR = "doctor"
    RELATIVE = "relative"
    SOCIAL_WORKER = "social_worker"


class PartyState(enum.StrEnum):
    RINGING = "ringing"
    JOINED = "joined"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    LEFT = "left"


class ConferenceParticipant(Base):
    """One party of a call's emergency conference, and who joined when (the roster is also the record)."""

    __tablename__ = "conference_participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    room: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[PartyRole] = mapped_column(str_enum(PartyRole, "party_role"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    name: Mapped[str | None] = mapped_column(String(100))
    number: Mapped[str | None] = mapped_column(String(32))
    # The channel's uniqueid: parties we originate get one we choose (Originate ChannelId), so events match.
    uniqueid: Mapped[str | None] = mapped_column(String(64), unique=True)
    channel: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[PartyState] = mapped_column(str_enum(PartyState, "party_state"), default=PartyState.RINGING)
    failure_reason: Mapped[str | None] = mapped_column(String(100))
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    joined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
