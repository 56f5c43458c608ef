"""Alarms from devices and sensors (a fall, smoke, a silent SOS, …), their life at the centre, and the device
messages they were made from (exactly-once intake)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed

# The tables the foreign keys point at must be in the metadata wherever these models are used.
from callcenter.devices import models as _devices  # noqa: F401
from callcenter.orders import models as _orders  # noqa: F401
from callcenter.users import models as _users  # noqa: F401


class AlarmType(enum.StrEnum):
    FALL = "fall"
    INACTIVITY = "inactivity"  # no movement for longer than the elder's usual (a night without moving)
    SMOKE = "smoke"
    GAS = "gas"
    WATER_LEAK = "water_leak"
    DOOR_OPEN_NIGHT = "door_open_night"
    BED_EXIT = "bed_exit"  # left the bed at night and did not come back
    SOS_SILENT = "sos_silent"  # the SOS button pressed without a voice call (a pendant with no speaker, or no line)
    GEOFENCE = "geofence"  # left (or entered) a fence outside its allowed hours
    VITAL_SIGN = "vital_sign"  # a reading outside its threshold


class AlarmSeverity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# Most severe first: the rank orders lists and the distribution queue (alarms.priority).
SEVERITY_RANK = {AlarmSeverity.CRITICAL: 0, AlarmSeverity.HIGH: 1, AlarmSeverity.MEDIUM: 2, AlarmSeverity.LOW: 3}

# What an alarm is when its device does not say: a life at risk now is critical; someone who may be lost or unwell,
# high; a home in trouble or a habit broken, medium. Threshold rules (a later slice) set a vital sign's own.
DEFAULT_SEVERITY = {
    AlarmType.FALL: AlarmSeverity.CRITICAL,
    AlarmType.SMOKE: AlarmSeverity.CRITICAL,
    AlarmType.GAS: AlarmSeverity.CRITICAL,
    AlarmType.SOS_SILENT: AlarmSeverity.CRITICAL,
    AlarmType.INACTIVITY: AlarmSeverity.HIGH,
    AlarmType.GEOFENCE: AlarmSeverity.HIGH,
    AlarmType.VITAL_SIGN: AlarmSeverity.HIGH,
    AlarmType.WATER_LEAK: AlarmSeverity.MEDIUM,
    AlarmType.DOOR_OPEN_NIGHT: AlarmSeverity.MEDIUM,
    AlarmType.BED_EXIT: AlarmSeverity.MEDIUM,
}


class AlarmSource(enum.StrEnum):
    MQTT = "mqtt"
    HTTP = "http"  # a gateway's or vendor cloud's signed ingest
    SCAIP = "scaip"  # SS 91100 over SIP MESSAGE
    MANUAL = "manual"  # entered by the centre's staff (a relative phoned it in)


class AlarmState(enum.StrEnum):
    NEW = "new"
    TAKEN = "taken"  # an agent has it
    RESPONDING = "responding"  # help is on its way (a call, a visit, 120)
    RESOLVED = "resolved"


class AlarmOutcome(enum.StrEnum):
    GENUINE = "genuine"
    FALSE = "false"  # a false alarm (pressed by mistake, a sensor fault)
    TEST = "test"  # a device test or an installer's


class LocationSource(enum.StrEnum):
    GPS = "gps"
    LBS = "lbs"  # the mobile network's cell location
    WIFI = "wifi"
    MANUAL = "manual"  # given by the staff member who entered the alarm


class Alarm(Base):
    """One alarm at the centre. Repeats of a device's alarm of the same type within CC_ALARM_MERGE_SECONDS, while
    it is not resolved, are counted on it (``repeat_count``) rather than raised again (alarms.intake)."""

    __tablename__ = "alarms"
    # A device's message id makes one alarm at most; staff-made alarms have none.
    __table_args__ = (UniqueConstraint("device_id", "device_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[AlarmType] = mapped_column(str_enum(AlarmType, "alarm_type"), index=True)
    severity: Mapped[AlarmSeverity] = mapped_column(str_enum(AlarmSeverity, "alarm_severity"))
    state: Mapped[AlarmState] = mapped_column(str_enum(AlarmState, "alarm_state"), default=AlarmState.NEW,
                                              index=True)
    source: Mapped[AlarmSource] = mapped_column(str_enum(AlarmSource, "alarm_source"))
    elder_id: Mapped[int | None] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"), index=True)
    # The id the device gave its first message about this alarm (its repeats' are in alarm_messages).
    device_message_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the device's clock
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)  # the platform's
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    last_received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Precise location ({latitude, longitude, accuracy_m, source}) and the device's own details (a vital sign's
    # value, a sensor's zone): personal data, sealed at rest (callcenter.db.sealed).
    location: Mapped[dict[str, Any] | None] = mapped_column(Sealed("alarms.location", json=True))
    payload: Mapped[dict[str, Any]] = mapped_column(Sealed("alarms.payload", json=True), default=dict)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id", ondelete="RESTRICT"),
                                                      index=True)
    # Its distribution to agents (alarms.distribution): whose panel it is offered on now, since when, when it was
    # first offered and how many times, and when it overflowed to the supervisors (past the answer target). The
    # answer time is received_at → taken_at; these tell where it went meanwhile, and survive a restart.
    offered_to: Mapped[str | None] = mapped_column(String(100))
    offered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_offered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    offer_count: Mapped[int] = mapped_column(Integer, default=0)
    overflowed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Who moved it along, and when (names at the time: the record stays readable if an account goes).
    taken_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    taken_by: Mapped[str | None] = mapped_column(String(100))
    responding_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[AlarmOutcome | None] = mapped_column(str_enum(AlarmOutcome, "alarm_outcome"))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Moves on every state change (not on a merged repeat): a step taken on what was read before another agent's
    # step is refused (409) instead of overwriting it.
    version: Mapped[int] = mapped_column(Integer, default=1)


class AlarmMessage(Base):
    """Every device message the intake accepted, by the device's own message id: a device resending one it had no
    acknowledgement for gets the same receipt, and nothing is stored twice."""

    __tablename__ = "alarm_messages"
    __table_args__ = (UniqueConstraint("device_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"))
    message_id: Mapped[str] = mapped_column(String(64))
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    merged: Mapped[bool] = mapped_column(default=False)  # a repeat counted on an open alarm
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
