"""What a device sends about an alarm (``DeviceAlarmMessage``, the JSON payload of every transport: MQTT now,
HTTP and SCAIP later), and the schemas of /api/v1/alarms."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from callcenter.alarms.models import (
    AlarmOutcome,
    AlarmSeverity,
    AlarmSource,
    AlarmState,
    AlarmType,
    LocationSource,
)
from callcenter.api.schemas import (
    MAX_INT,
    Instant,
    Note,
    Page,
    PageQuery,
    QuerySchema,
    RequestSchema,
    ResponseSchema,
    RowId,
)

# A device's own id for a message: what it resends unchanged until it is acknowledged.
MessageId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
# The device's details beyond the common fields, kept with the alarm (sealed): bounded, a flood is no alarm.
MAX_EXTRA_BYTES = 4096


def _bounded(extra: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_EXTRA_BYTES:
        raise ValueError(f"{size} bytes; at most {MAX_EXTRA_BYTES}")
    return extra


Extra = Annotated[dict[str, Any], AfterValidator(_bounded)]


class Location(RequestSchema):
    """WGS-84, as the device measured it."""

    latitude: float = Field(ge=-90, le=90, description="WGS-84 latitude, degrees")
    longitude: float = Field(ge=-180, le=180, description="WGS-84 longitude, degrees")
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="radius of the fix's uncertainty, metres")
    source: LocationSource | None = Field(None, description="how the position was found: gps, lbs (cell), wifi")


class DevicePosition(RequestSchema):
    """A position as devices send it (docs/device-protocol.md): short names, WGS-84."""

    lat: float = Field(ge=-90, le=90, description="WGS-84 latitude, degrees")
    lon: float = Field(ge=-180, le=180, description="WGS-84 longitude, degrees")
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="radius of the fix's uncertainty, metres")
    source: LocationSource | None = Field(None, description="how the position was found: gps, lbs (cell), wifi")

    def as_location(self) -> dict[str, Any]:
        """As the alarm keeps it (the same shape as a location staff enter)."""
        return Location(latitude=self.lat, longitude=self.lon, accuracy_m=self.accuracy_m,
                        source=self.source).model_dump(mode="json")


class DeviceAlarmMessage(RequestSchema):
    """An alarm as a device sends it (strict: a number in quotes is refused, an unknown field too)."""

    message_id: MessageId = Field(description="the device's id for this message, resent unchanged until it is "
                                              "acknowledged: one message makes one alarm at most")
    type: AlarmType = Field(description="what happened")
    occurred_at: Instant = Field(description="when, on the device's clock (ISO 8601 with an offset); not further "
                                             "in the future than CC_ALARM_CLOCK_SKEW_SECONDS")
    severity: AlarmSeverity | None = Field(None, description="the device's own judgement; default by type "
                                                             "(fall, smoke, gas, silent SOS: critical)")
    position: DevicePosition | None = Field(None, description="where the device was")
    extra: Extra = Field(default_factory=dict, description=f"the device's own details (a reading's value, a "
                                                           f"sensor's zone), at most {MAX_EXTRA_BYTES} bytes of "
                                                           f"JSON; kept as the alarm's payload")


# --- /api/v1/alarms ------------------------------------------------------------------------------------------------

class AlarmQuery(PageQuery):
    state: AlarmState | None = Field(None, description="only alarms in this state")
    type: AlarmType | None = Field(None, description="only alarms of this type")
    elder_id: RowId | None = Field(None, description="only this elder's alarms")


class AlarmCreate(RequestSchema):
    """An alarm the centre's staff enter themselves (a relative phoned in a fall): source manual."""

    type: AlarmType
    elder_id: RowId = Field(description="whose alarm it is")
    device_id: RowId | None = Field(None, description="the elder's device that raised it, if one did")
    severity: AlarmSeverity | None = Field(None, description="default by type")
    occurred_at: Instant | None = Field(None, description="when it happened (default: now); not in the future")
    location: Location | None = Field(None, description="where the elder is, if known")
    note: Note | None = Field(None, description="what was reported, by whom")


class Transition(RequestSchema):
    version: int = Field(ge=1, le=MAX_INT, description="the alarm's version as read; a stale one is refused (409)")


class Resolution(Transition):
    outcome: AlarmOutcome = Field(description="genuine, false (a false alarm) or test")
    note: Note | None = Field(None, description="what was done, what was found")


class LocationOut(ResponseSchema):
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    source: LocationSource | None = None


class AlarmOut(ResponseSchema):
    id: int
    number: str = Field(description="AL-YYYYMMDD-XXXXXXXX")
    type: AlarmType
    severity: AlarmSeverity
    state: AlarmState
    source: AlarmSource
    queue_priority: int = Field(description="its place in the desk's queue, lower first (alarms.priority): after "
                                            "SOS calls, fall/smoke/gas/silent SOS first, vital signs last")
    elder_id: int | None
    device_id: int | None
    occurred_at: dt.datetime = Field(description="on the device's clock")
    received_at: dt.datetime = Field(description="on the platform's clock")
    repeat_count: int = Field(description="repeats merged into it (same device and type, within the window)")
    last_received_at: dt.datetime
    work_order_id: int | None = Field(description="the emergency work order raised with it")
    taken_at: dt.datetime | None
    taken_by: str | None
    responding_at: dt.datetime | None
    resolved_at: dt.datetime | None
    resolved_by: str | None
    outcome: AlarmOutcome | None
    version: int


class AlarmDetail(AlarmOut):
    elder_name: str | None = None
    elder_address: str | None = None
    device_kind: str | None = None
    device_serial_number: str | None = None
    work_order_number: str | None = None
    device_message_id: str | None
    location: LocationOut | None = Field(description="where the device (or the elder) was, WGS-84")
    payload: dict[str, Any] = Field(description="the device's own details (its message's extra), or the staff's "
                                                "note")
    outcome_note: str | None


class AlarmPage(Page):
    items: list[AlarmOut]


# --- /api/v1/alarms/answer-times -----------------------------------------------------------------------------------

class AnswerTimesQuery(QuerySchema):
    since: Instant | None = Field(None, alias="from", description="received at or after (default: 7 days before to)")
    until: Instant | None = Field(None, alias="to", description="received before (default: now)")


class TargetShare(ResponseSchema):
    within_seconds: int = Field(description="the answer target: taken within this many seconds of arrival")
    target_percent: float = Field(description="the share of alarms the target asks for (TEC Quality)")
    within: int = Field(description="alarms taken within it")
    judged: int = Field(description="alarms judged against it: every one taken, and those not taken once older than "
                                    "it (one still ringing has not missed it yet)")
    percent: float | None = Field(description="within / judged, in percent; null with none judged")
    met: bool | None = Field(description="whether the share reaches the target; null with none judged")


class AnswerTimeFigures(ResponseSchema):
    type: AlarmType | None = Field(description="the alarm type; null on the line of all types")
    alarms: int = Field(description="received in the period")
    answered: int = Field(description="taken by an agent")
    overflowed: int = Field(description="offered to the supervisors after the answer target passed")
    longest_seconds: float | None = Field(description="the longest wait of those taken")
    targets: list[TargetShare]


class AnswerTimes(ResponseSchema):
    since: dt.datetime
    until: dt.datetime
    types: list[AnswerTimeFigures] = Field(description="per alarm type, the most urgent types first")
    total: AnswerTimeFigures = Field(description="all types together")
