from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow

# The table the provider foreign keys point at must be in the metadata wherever these models are used.
from callcenter.providers import models as _providers  # noqa: F401
from callcenter.retention.columns import LegalHoldColumns


class WorkOrderKind(enum.StrEnum):
    EMERGENCY = "emergency"
    SERVICE_REQUEST = "service_request"
    CONSULTATION = "consultation"
    COMPLAINT = "complaint"
    DEVICE_FAULT = "device_fault"


class WorkOrderStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    UNDER_REVIEW = "under_review"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_SERVICE = "in_service"
    SERVICE_DONE = "service_done"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class WorkOrder(LegalHoldColumns, Base):
    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[WorkOrderKind] = mapped_column(str_enum(WorkOrderKind, "work_order_kind"), index=True)
    status: Mapped[WorkOrderStatus] = mapped_column(str_enum(WorkOrderStatus, "work_order_status"),
                                                    default=WorkOrderStatus.OPEN, index=True)
    # 1 is the most urgent (an SOS); 5 the least.
    priority: Mapped[int] = mapped_column(Integer, default=3)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="RESTRICT"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    location_text: Mapped[str | None] = mapped_column(String(300))
    # The service needed (providers.models.ServiceType) and the provider chosen for it.
    service: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_providers.id", ondelete="RESTRICT"),
                                                    index=True)
    latitude: Mapped[float | None] = mapped_column(Numeric(9, 6, asdecimal=False))
    longitude: Mapped[float | None] = mapped_column(Numeric(9, 6, asdecimal=False))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic concurrency: a stale edit fails instead of silently overwriting another agent's change.
    version: Mapped[int] = mapped_column(Integer, default=1)

    events: Mapped[list[WorkOrderEvent]] = relationship(
        back_populates="work_order", order_by="WorkOrderEvent.id", cascade="all, delete-orphan"
    )

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class WorkOrderEvent(Base):
    """One step in an order's life: who did what, when, from which call."""

    __tablename__ = "work_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # "system", "ivr", or a user's name at the time: the trail stays readable if the account goes.
    actor_label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    # Indexed: retention looks up which orders' trails mention a call before it removes the call's log.
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    work_order: Mapped[WorkOrder] = relationship(back_populates="events")
