"""Where elders' devices are (positions, WGS-84) and the areas they are watched against (geofences), with each
fence's last known side of its line per elder: the state that makes a crossing raise one alarm, not one per fix."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# The tables the foreign keys point at must be in the metadata wherever these models are used.
from callcenter.alarms import models as _alarms  # noqa: F401
from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed
from callcenter.devices import models as _devices  # noqa: F401
from callcenter.elders import models as _elders  # noqa: F401


class PositionSource(enum.StrEnum):
    GPS = "gps"
    LBS = "lbs"  # the mobile network's cell towers: hundreds of metres
    WIFI = "wifi"


class Position(Base):
    """One fix a device reported (docs/device-protocol.md, *Position*), once per (device, message id)."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("device_id", "message_id"),
                      Index("ix_positions_elder_id_measured_at", "elder_id", "measured_at"),
                      # The retention's batches find the fixes past it by their time (locations.retention).
                      Index("ix_positions_measured_at", "measured_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"))
    # The device's elder when the fix came (a device given to another elder later does not move the track).
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    measured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the device's clock
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)  # the platform's
    # {lat, lon} WGS-84 degrees, and altitude_m / speed_mps / heading_deg when given: where a person is, sealed.
    fix: Mapped[dict[str, Any]] = mapped_column(Sealed("positions.fix", json=True))
    accuracy_m: Mapped[float] = mapped_column(Float)
    source: Mapped[PositionSource] = mapped_column(str_enum(PositionSource, "position_source"))
    transport: Mapped[str] = mapped_column(String(16))  # mqtt, http, … (alarms.models.AlarmSource)


class FenceKind(enum.StrEnum):
    STAY_INSIDE = "stay_inside"  # home and its streets: leaving outside the allowed hours is an alarm
    KEEP_OUT = "keep_out"  # a river bank, a main road: entering outside the allowed hours is an alarm


class FenceShape(enum.StrEnum):
    CIRCLE = "circle"
    POLYGON = "polygon"


class Geofence(Base):
    """An area of one elder's: a circle (centre, radius in metres) or a polygon of WGS-84 points, its kind and the
    hours of the centre's day (CC_TIMEZONE) in which crossing it is allowed."""

    __tablename__ = "geofences"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[FenceKind] = mapped_column(str_enum(FenceKind, "geofence_kind"))
    shape: Mapped[FenceShape] = mapped_column(str_enum(FenceShape, "geofence_shape"))
    # circle: {"center": {lat, lon}, "radius_m"}; polygon: {"points": [{lat, lon}, …]}. Around a home: sealed.
    area: Mapped[dict[str, Any]] = mapped_column(Sealed("geofences.area", json=True))
    # Minutes after the centre's midnight; from > until runs over midnight. Both None: never allowed.
    allowed_from: Mapped[int | None] = mapped_column(Integer)
    allowed_until: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class FenceSide(enum.StrEnum):
    INSIDE = "inside"
    OUTSIDE = "outside"


class GeofenceState(Base):
    """The side of a fence its elder was last known on (by the newest fix that said so for certain), and whether
    the present stay on the forbidden side has raised its alarm: one alarm per excursion."""

    __tablename__ = "geofence_states"

    geofence_id: Mapped[int] = mapped_column(ForeignKey("geofences.id", ondelete="CASCADE"), primary_key=True)
    side: Mapped[FenceSide] = mapped_column(str_enum(FenceSide, "geofence_side"))
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the first fix on this side (device clock)
    last_measured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the newest fix judged: older ones are not
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id", ondelete="SET NULL"))
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id", ondelete="SET NULL"))  # this excursion's
