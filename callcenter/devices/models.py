from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.elders.models import Elder


class DeviceKind(enum.StrEnum):
    ONE_TOUCH = "one_touch"
    PENDANT = "pendant"
    WATCH = "watch"
    HEALTH_MONITOR = "health_monitor"


class DeviceStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    FAULTY = "faulty"
    RETIRED = "retired"


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="SET NULL"), index=True)
    kind: Mapped[DeviceKind] = mapped_column(str_enum(DeviceKind, "device_kind"))
    serial_number: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The PJSIP endpoint name and digest user; the password is kept only as its HA1 digest (see sip_auth).
    sip_username: Mapped[str] = mapped_column(String(64), unique=True)
    sip_ha1: Mapped[str] = mapped_column(String(32))
    phone_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[DeviceStatus] = mapped_column(str_enum(DeviceStatus, "device_status"), default=DeviceStatus.ACTIVE)
    battery_percent: Mapped[int | None] = mapped_column(Integer)
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    elder: Mapped[Elder | None] = relationship()
