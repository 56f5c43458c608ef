"""Service providers (seed 5.11, 6.1.3): who delivers meals, cleaning, bathing, repairs… at an elder's door.

The registry (seed 5.11): qualification and licence with its expiry, areas served, services and fees, staff and
rating; matching (6.1.3) reads services, areas, location, rating and current load. Providers report to the platform
over a signed API (seed 7.5.3) with per-provider keys.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, utcnow


class ServiceType(enum.StrEnum):
    """What an elder can ask for (seed 5.x, 6.1); the IVR's service codes are these."""

    MEAL_DELIVERY = "meal_delivery"
    CLEANING = "cleaning"
    BATHING = "bathing"
    REPAIR = "repair"
    ESCORT = "escort"  # accompanying to hospital, shops, offices
    RESPITE_CARE = "respite_care"
    REHAB_NURSING = "rehab_nursing"
    HOME_MEDICAL = "home_medical"  # a doctor's or nurse's home visit
    COMPANIONSHIP = "companionship"
    OTHER = "other"


class ServiceProvider(Base):
    __tablename__ = "service_providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    # ServiceType values offered, and the communities (社区) served; matched against the elder's community.
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    communities: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    contact_person: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    latitude: Mapped[float | None] = mapped_column(Numeric(9, 6, asdecimal=False))
    longitude: Mapped[float | None] = mapped_column(Numeric(9, 6, asdecimal=False))
    # Qualification (资质) and business licence; an expired licence stops matching and dispatch.
    qualification: Mapped[str | None] = mapped_column(String(200))
    licence_number: Mapped[str | None] = mapped_column(String(64))
    licence_expires_on: Mapped[dt.date | None] = mapped_column(Date)
    # {service: {"price_yuan": 30.0, "unit": "次", "note": ...}} for the services offered.
    fees: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # 1..5, recomputed from receipts' and follow-ups' satisfaction, founded complaints and urgings (seed 6.6, 8).
    rating: Mapped[float | None] = mapped_column(Numeric(3, 2, asdecimal=False))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    staff: Mapped[list[ProviderStaff]] = relationship(back_populates="provider", order_by="ProviderStaff.id",
                                                      cascade="all, delete-orphan")


class ProviderStaff(Base):
    """A provider's staff member who goes to elders' doors (seed 6.3)."""

    __tablename__ = "provider_staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    # ServiceType values this person may deliver; empty: any the provider offers.
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    certificate: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    provider: Mapped[ServiceProvider] = relationship(back_populates="staff")


class ProviderApiKey(Base):
    """A key a provider's own system signs its reports with (HMAC-SHA256). The secret is kept because verifying an
    HMAC needs it; it is shown once at creation and never returned again."""

    __tablename__ = "provider_api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id", ondelete="CASCADE"), index=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ProviderApiNonce(Base):
    """Nonces seen within the timestamp window: a second request with the same one is a replay."""

    __tablename__ = "provider_api_nonces"
    __table_args__ = (UniqueConstraint("key_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40))
    nonce: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ProviderReport(Base):
    """A status report or receipt a provider pushed; ``report_id`` is the provider's idempotency key, so a retried
    delivery returns the first outcome and changes nothing."""

    __tablename__ = "provider_reports"
    __table_args__ = (UniqueConstraint("provider_id", "report_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("service_providers.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[str] = mapped_column(String(64))
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="SET NULL"),
                                                      index=True)
    action: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The HTTP status and body answered the first time, replayed to a duplicate delivery.
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
