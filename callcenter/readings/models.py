"""Health readings, the device messages they came from (exactly-once intake), an elder's own thresholds, and the
trends that raised a doctor's follow-up.

Readings are kept three years. On PostgreSQL ``readings`` is partitioned by month on ``measured_at`` (declarative
range partitioning; the partitions live in the schema ``reading_partitions``, made ahead of time by
``readings_ensure_partitions``, see ``readings.partitions``); on SQLite it is a plain table. A partitioned table's
primary key and unique constraints must include the partition key, so the key is ``(id, measured_at)`` and the
device's message ids are kept unique in their own small table, ``reading_messages``, not on the readings.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.alarms import models as _alarms  # noqa: F401
from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed

# The tables the foreign keys point at must be in the metadata wherever these models are used.
from callcenter.devices import models as _devices  # noqa: F401
from callcenter.elders import models as _elders  # noqa: F401
from callcenter.orders import models as _orders  # noqa: F401
from callcenter.users import models as _users  # noqa: F401

# 64-bit on PostgreSQL (10 million readings a year is a small centre's); SQLite's rowid is its INTEGER PRIMARY KEY.
ReadingId = BigInteger().with_variant(Integer(), "sqlite")


class ReadingType(enum.StrEnum):
    BLOOD_PRESSURE = "blood_pressure"
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    GLUCOSE = "glucose"
    TEMPERATURE = "temperature"
    WEIGHT = "weight"
    STEPS = "steps"


class ReadingSource(enum.StrEnum):
    MQTT = "mqtt"
    HTTP = "http"  # a gateway's or vendor cloud's signed ingest
    MANUAL = "manual"  # entered by the centre's staff or the community doctor


class Reading(Base):
    """One measurement. Its values are health data: sealed at rest, never searched in SQL (the trend rule reads
    one elder's week and opens it in Python)."""

    __tablename__ = "readings"
    __table_args__ = (
        # One elder's readings of one type over a time range: the trend chart, the trend rule (90 days, 7 days).
        Index("ix_readings_elder_id_type_measured_at", "elder_id", "type", "measured_at"),
        {"postgresql_partition_by": "RANGE (measured_at)"},
    )

    id: Mapped[int] = mapped_column(ReadingId, primary_key=True, autoincrement=True)
    measured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)  # the partition key
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"))
    type: Mapped[ReadingType] = mapped_column(str_enum(ReadingType, "reading_type"))
    source: Mapped[ReadingSource] = mapped_column(str_enum(ReadingSource, "reading_source"))
    # {"systolic_mmhg": 182, "diastolic_mmhg": 112, …} as docs/device-protocol.md names them, and the device's own
    # extra or the staff's note: health data, sealed (callcenter.db.sealed).
    values: Mapped[dict[str, Any]] = mapped_column(Sealed("readings.values", json=True))
    details: Mapped[dict[str, Any] | None] = mapped_column(Sealed("readings.details", json=True))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Hand entry: who (the name at the time: the record stays readable if the account goes).
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    entered_by: Mapped[str | None] = mapped_column(String(100))
    # The vital-sign alarm this reading raised (or was counted on), if it was out of range.
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id", ondelete="SET NULL"))


class ReadingMessage(Base):
    """Every device message the intake took, by the device's own message id: a repeat gets the same receipt and
    stores nothing. Kept apart from ``readings`` because a unique constraint on a partitioned table must include
    its partition key, and (device, message id) must be unique whatever the measurement time says."""

    __tablename__ = "reading_messages"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reading_id: Mapped[int] = mapped_column(ReadingId)
    measured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)  # pruned with its reading
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThresholdOverride(Base):
    """An elder's own limits for one measure of one reading type, set on a doctor's instruction: they replace the
    default (readings.thresholds.DEFAULTS) for that measure. Who set them and when are kept; each change is also
    an audit entry."""

    __tablename__ = "reading_thresholds"
    __table_args__ = (UniqueConstraint("elder_id", "type", "measure"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    type: Mapped[ReadingType] = mapped_column(str_enum(ReadingType, "reading_type"))
    measure: Mapped[str] = mapped_column(String(32))
    # {"critical_low", "high_low", "high_high", "critical_high", "target_high"}: an elder's targets say what they
    # are treated for, so sealed like the readings.
    limits: Mapped[dict[str, Any]] = mapped_column(Sealed("reading_thresholds.limits", json=True))
    note: Mapped[str | None] = mapped_column(Sealed("reading_thresholds.note"))
    # The community doctor (the elder's contact of role doctor) whose instruction this is, and their name then.
    doctor_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    doctor_name: Mapped[str] = mapped_column(String(100))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReadingTrend(Base):
    """A sustained trend: enough of an elder's readings of one type above target within the window raised one
    follow-up work order for the community doctor. It stays open — no second order — until a reading within
    target ends it."""

    __tablename__ = "reading_trends"
    __table_args__ = (
        # At most one open trend per elder and type (the rule's "once per trend"), on both backends.
        Index("uq_reading_trends_open", "elder_id", "type", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    type: Mapped[ReadingType] = mapped_column(str_enum(ReadingType, "reading_type"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    readings_above: Mapped[int] = mapped_column(Integer)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="SET NULL"))
    # The measurement time of the reading back within target that ended it (the next trend counts from there).
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
