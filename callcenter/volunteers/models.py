from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import JSON, Date, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed

# The tables the foreign keys point at must be in the metadata wherever these models are used.
from callcenter.elders import models as _elders  # noqa: F401
from callcenter.users import models as _users  # noqa: F401


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"  # registered, not yet reviewed
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class FeedbackKind(enum.StrEnum):
    EVALUATION = "evaluation"
    COMPLAINT = "complaint"
    AWARD = "award"


class VolunteerTeam(Base):
    __tablename__ = "volunteer_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    leader_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    community: Mapped[str | None] = mapped_column(String(100))
    review_status: Mapped[ReviewStatus] = mapped_column(str_enum(ReviewStatus, "volunteer_team_review_status"),
                                                        default=ReviewStatus.PENDING)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    volunteers: Mapped[list[Volunteer]] = relationship(back_populates="team", order_by="Volunteer.id")


# The blind index of volunteers' resident ID numbers (callcenter.db.sealed): look-ups and uniqueness.
ID_NUMBER_INDEX = "volunteers.id_number"


class Volunteer(Base):
    __tablename__ = "volunteers"
    __blind_indexes__: ClassVar[dict[str, tuple[str, str]]] = {"id_number": ("id_number_digest", ID_NUMBER_INDEX)}

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    id_number: Mapped[str | None] = mapped_column(Sealed("volunteers.id_number"))  # sealed at rest
    id_number_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("volunteer_teams.id", ondelete="SET NULL"), index=True)
    community: Mapped[str | None] = mapped_column(String(100), index=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"name", "completed_on", "hours"}] and [{"name", "number", "issued_on", "expires_on"}].
    trainings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    certificates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    review_status: Mapped[ReviewStatus] = mapped_column(str_enum(ReviewStatus, "volunteer_review_status"),
                                                        default=ReviewStatus.PENDING, index=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    team: Mapped[VolunteerTeam | None] = relationship(back_populates="volunteers")


class VolunteerServiceRecord(Base):
    """A service a volunteer gave (visit, companionship, escort…), optionally to an elder."""

    __tablename__ = "volunteer_service_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="SET NULL"), index=True)
    served_on: Mapped[dt.date] = mapped_column(Date)
    hours: Mapped[float] = mapped_column(Numeric(5, 2, asdecimal=False))
    description: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VolunteerFeedback(Base):
    """An evaluation (rated 1..5), a complaint or an award about a volunteer."""

    __tablename__ = "volunteer_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[FeedbackKind] = mapped_column(str_enum(FeedbackKind, "volunteer_feedback_kind"), index=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    given_on: Mapped[dt.date] = mapped_column(Date)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="SET NULL"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
