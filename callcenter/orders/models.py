from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed

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
    # A complaint's own steps (seed 6.5): the handler investigates, then proposes a resolution.
    INVESTIGATING = "investigating"
    RESOLUTION_PROPOSED = "resolution_proposed"
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
    # Where the elder is: precise location, sealed at rest (callcenter.db.sealed).
    latitude: Mapped[float | None] = mapped_column(Sealed("work_orders.latitude", json=True))
    longitude: Mapped[float | None] = mapped_column(Sealed("work_orders.longitude", json=True))
    # The provider's staff member sent to the door (seed 6.3), and the steps' times.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("provider_staff.id", ondelete="RESTRICT"), index=True)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The service receipt the staff member files (what was done, result, duration, the elder's satisfaction), and
    # the centre's follow-up call result (satisfaction, comments, solved). Shapes in orders.schemas.
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    follow_up: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 1 (very dissatisfied) .. 5 (very satisfied): the follow-up's if there was one, else the receipt's.
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    # Free answer of a consultation or outcome of a complaint / cancellation.
    resolution: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic concurrency: a stale edit fails instead of silently overwriting another agent's change.
    version: Mapped[int] = mapped_column(Integer, default=1)

    complaint: Mapped[Complaint | None] = relationship(back_populates="work_order", uselist=False,
                                                       cascade="all, delete-orphan", lazy="selectin")
    events: Mapped[list[WorkOrderEvent]] = relationship(
        back_populates="work_order", order_by="WorkOrderEvent.id", cascade="all, delete-orphan"
    )

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class ComplaintSource(enum.StrEnum):
    CALL = "call"  # an agent took it on a call
    IVR = "ivr"  # the caller chose the complaint option
    CONSUMER_ASSOCIATION = "consumer_association"
    AUTHORITY = "authority"
    MEDIA = "media"
    OTHER = "other"


class Complaint(Base):
    """What a complaint order carries beyond any order (seed 6.5): its source and their deadline, what it is
    about, the handler's evidence and proposed resolution, and the contact with the complainant."""

    __tablename__ = "complaints"

    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[ComplaintSource] = mapped_column(str_enum(ComplaintSource, "complaint_source"))
    # The forwarding body's reference and deadline (consumer association, authorities, media).
    external_reference: Mapped[str | None] = mapped_column(String(100))
    external_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    complainant_name: Mapped[str | None] = mapped_column(String(100))
    complainant_phone: Mapped[str | None] = mapped_column(String(32))
    # Who the complaint is about: a provider, and/or an elder's services (repeated ones raise supervision cases).
    about_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_providers.id", ondelete="RESTRICT"), index=True)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # [{"at", "by", "text", "attachment"}]: what the investigation found.
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    proposed_resolution: Mapped[str | None] = mapped_column(Text)
    complainant_contacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    complainant_response: Mapped[str | None] = mapped_column(Text)
    # Set when closed: was the complaint founded (counts in the provider's evaluation, seed 8).
    founded: Mapped[bool | None] = mapped_column(Boolean)

    work_order: Mapped[WorkOrder] = relationship(back_populates="complaint")


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
