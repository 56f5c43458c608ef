from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow

# The tables the foreign keys point at must be in the metadata wherever these models are used.
from callcenter.orders import models as _orders  # noqa: F401
from callcenter.users import models as _users  # noqa: F401


class CaseReason(enum.StrEnum):
    DUE_SOON = "due_soon"  # a deadline is near and the order is still open: escalate before it passes
    OVERDUE = "overdue"  # past its deadline
    REPEATED_COMPLAINTS = "repeated_complaints"  # about the same provider or elder within the window
    DISSATISFIED = "dissatisfied"  # a receipt or follow-up rated dissatisfied


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    URGING = "urging"  # at least one urging recorded, not yet resolved
    RESOLVED = "resolved"


class UrgingMethod(enum.StrEnum):
    CALL = "call"
    MESSAGE = "message"  # a platform message to the provider


class SupervisionCase(Base):
    __tablename__ = "supervision_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    reason: Mapped[CaseReason] = mapped_column(str_enum(CaseReason, "supervision_case_reason"), index=True)
    status: Mapped[CaseStatus] = mapped_column(str_enum(CaseStatus, "supervision_case_status"),
                                               default=CaseStatus.OPEN, index=True)
    # What raised it, so the automatic scan never opens the same case twice (e.g. "overdue:order:42").
    trigger_key: Mapped[str] = mapped_column(String(120), unique=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="RESTRICT"),
                                                      index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_providers.id", ondelete="RESTRICT"),
                                                    index=True)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    summary: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution: Mapped[str | None] = mapped_column(Text)

    urgings: Mapped[list[SupervisionUrging]] = relationship(
        back_populates="case", order_by="SupervisionUrging.id", cascade="all, delete-orphan", lazy="selectin")


class SupervisionUrging(Base):
    """One urging (催办) of the provider and what came of it."""

    __tablename__ = "supervision_urgings"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("supervision_cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    method: Mapped[UrgingMethod] = mapped_column(str_enum(UrgingMethod, "urging_method"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text)

    case: Mapped[SupervisionCase] = relationship(back_populates="urgings")
