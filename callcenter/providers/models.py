"""Service providers (seed 5.11, 6.1.3): who delivers meals, cleaning, bathing, repairs… at an elder's door.

This is the registry's core — what matching a work order needs (services offered, areas served, active).
Qualifications, staff, fees and ratings belong to the service-workflow issue and extend this table.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

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
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
