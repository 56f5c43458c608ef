"""What a device sends about a reading (docs/device-protocol.md, "Reading"), each type's ``values``, and the
schemas of the readings' REST API.

A message is read in two steps so that every error names its field as the protocol does (``values.systolic_mmhg``):
the envelope (``DeviceReadingMessage``: the type, the time, ``values`` as an object), then the type's values
(``VALUES[type]``), strictly (a number in quotes is refused, an unknown field too).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

from callcenter.alarms.models import AlarmSeverity
from callcenter.alarms.schemas import Extra, MessageId
from callcenter.api.errors import Invalid
from callcenter.api.registry import invalid
from callcenter.api.schemas import (
    Instant,
    Note,
    QuerySchema,
    RequestSchema,
    ResponseSchema,
    RowId,
)
from callcenter.readings.models import ReadingSource, ReadingType
from callcenter.readings.thresholds import MEASURES

# --- each type's values (plausible ranges: a value outside is a device's or a typist's error, not a patient) ---


class GlucoseContext(enum.StrEnum):
    FASTING = "fasting"
    AFTER_MEAL = "after_meal"
    RANDOM = "random"


class TemperatureSite(enum.StrEnum):
    FOREHEAD = "forehead"
    EAR = "ear"
    ARMPIT = "armpit"
    WRIST = "wrist"


class BloodPressureValues(RequestSchema):
    systolic_mmhg: int = Field(ge=40, le=300, description="mmHg")
    diastolic_mmhg: int = Field(ge=20, le=200, description="mmHg; below the systolic")
    pulse_bpm: int | None = Field(None, ge=20, le=300, description="beats per minute, if the cuff measured it")


class HeartRateValues(RequestSchema):
    bpm: int = Field(ge=20, le=300, description="beats per minute")


class Spo2Values(RequestSchema):
    percent: int = Field(ge=0, le=100, description="oxygen saturation, %")


class GlucoseValues(RequestSchema):
    mmol_l: float = Field(ge=0.5, le=50, description="mmol/L")
    context: GlucoseContext = Field(description="fasting, after_meal or random")


class TemperatureValues(RequestSchema):
    celsius: float = Field(ge=25, le=45, description="°C")
    site: TemperatureSite | None = Field(None, description="forehead, ear, armpit or wrist")


class WeightValues(RequestSchema):
    kg: float = Field(ge=10, le=300, description="kg")


class StepsValues(RequestSchema):
    count: int = Field(ge=0, le=200_000, description="steps from `since` to the measurement time")
    since: Instant = Field(description="ISO 8601 with an offset; before the measurement time")


VALUES: dict[ReadingType, type[RequestSchema]] = {
    ReadingType.BLOOD_PRESSURE: BloodPressureValues,
    ReadingType.HEART_RATE: HeartRateValues,
    ReadingType.SPO2: Spo2Values,
    ReadingType.GLUCOSE: GlucoseValues,
    ReadingType.TEMPERATURE: TemperatureValues,
    ReadingType.WEIGHT: WeightValues,
    ReadingType.STEPS: StepsValues,
}
assert set(VALUES) == set(MEASURES) == set(ReadingType)


def parse_values(reading_type: ReadingType, values: dict[str, Any], measured_at: dt.datetime) -> dict[str, Any]:
    """``values`` checked against the type's schema, as stored (JSON: a time as ISO 8601 text); ``Invalid`` naming
    the field as ``values.<name>``."""
    schema = VALUES[reading_type]
    try:
        parsed = schema.model_validate_json(json.dumps(values), strict=True)
    except ValidationError as error:
        refused = invalid(error)
        details = [{**item, "field": _in_values(item.get("field"))} for item in refused.details or []] or None
        field = _in_values(refused.field)
        message = refused.message if refused.field is None else refused.message.replace(
            str(refused.field), str(field), 1)
        raise Invalid(message, field=field, details=details) from None
    _check_together(parsed, measured_at)
    return parsed.model_dump(mode="json", exclude_none=True)


def _in_values(field: str | None) -> str:
    return "values" if field is None else f"values.{field}"


def _check_together(parsed: BaseModel, measured_at: dt.datetime) -> None:
    if isinstance(parsed, BloodPressureValues) and parsed.diastolic_mmhg >= parsed.systolic_mmhg:
        raise Invalid("values.diastolic_mmhg: must be below the systolic", field="values.diastolic_mmhg")
    if isinstance(parsed, StepsValues) and parsed.since >= measured_at:
        raise Invalid("values.since: must be before measured_at", field="values.since")


class DeviceReadingMessage(RequestSchema):
    """A reading as a device sends it: the envelope; ``values`` is checked against the type's schema afterwards."""

    message_id: MessageId = Field(description="the device's id for this message, resent unchanged until it is "
                                              "acknowledged: one message makes one reading at most")
    type: ReadingType = Field(description="what was measured")
    measured_at: Instant = Field(description="when, on the device's clock (ISO 8601 with an offset)")
    values: dict[str, Any] = Field(description="the type's values (docs/device-protocol.md)")
    extra: Extra = Field(default_factory=dict, description="the device's own details, at most 4 KiB")


# --- /api/v1/elders/{id}/readings, /thresholds ---------------------------------------------------------------------

class ReadingCreate(RequestSchema):
    """A reading entered by hand (source manual): staff reading it off an elder's cuff on a call, the doctor's."""

    type: ReadingType
    measured_at: Instant = Field(description="when it was measured; not in the future")
    values: dict[str, Any] = Field(description="the type's values, as a device sends them "
                                               "(docs/device-protocol.md, \"Reading\")")
    device_id: RowId | None = Field(None, description="the elder's device it was read from, if any")
    note: Note | None = Field(None, description="how it was taken, what the elder said")


class ReadingQuery(QuerySchema):
    type: ReadingType | None = Field(None, description="only readings of this type")
    since: Instant | None = Field(None, alias="from", description="measured at or after (default: 90 days ago)")
    until: Instant | None = Field(None, alias="to", description="measured before (default: now)")
    limit: int = Field(500, ge=1, le=5000, description="at most this many, the newest first")
    call_id: RowId | None = Field(None, description="the call about this elder the reading is for (audited)")
    order_id: RowId | None = Field(None, description="the work order about this elder the reading is for (audited)")


class ReadingOut(ResponseSchema):
    id: int
    type: ReadingType
    measured_at: dt.datetime
    received_at: dt.datetime
    source: ReadingSource
    values: dict[str, Any]
    device_id: int | None
    entered_by: str | None
    alarm_id: int | None = Field(description="the vital-sign alarm it raised or was counted on, if out of range")


class ReadingCreated(ReadingOut):
    alarm_number: str | None = Field(None, description="the alarm it raised (or was merged into)")
    alarm_severity: AlarmSeverity | None = None
    follow_up_order_number: str | None = Field(None, description="the doctor's follow-up order a trend raised")


class ReadingList(ResponseSchema):
    items: list[ReadingOut]
    since: dt.datetime
    until: dt.datetime


class LimitsIn(RequestSchema):
    critical_low: float | None = Field(None, description="at or below: a critical alarm")
    high_low: float | None = Field(None, description="at or below: a high alarm")
    high_high: float | None = Field(None, description="at or above: a high alarm")
    critical_high: float | None = Field(None, description="at or above: a critical alarm")
    target_high: float | None = Field(None, description="the elder's target: above it three times in seven days "
                                                        "is a trend for the community doctor")


class ThresholdSet(RequestSchema):
    """An elder's own limits for the measures named (the others keep the defaults), on a doctor's instruction."""

    measures: dict[Annotated[str, Field(max_length=32)], LimitsIn] = Field(
        min_length=1, description="by measure (blood_pressure: systolic_mmhg, diastolic_mmhg; heart_rate: bpm; "
                                  "spo2: percent; glucose: mmol_l; temperature: celsius; weight: kg; steps: count)")
    doctor_contact_id: RowId = Field(description="the elder's community doctor (a contact of role doctor) whose "
                                                 "instruction this is")
    note: Note | None = Field(None, description="why")


class ThresholdQuery(QuerySchema):
    call_id: RowId | None = Field(None, description="the call about this elder it is read for (audited)")
    order_id: RowId | None = Field(None, description="the work order about this elder it is read for (audited)")


class MeasureThreshold(ResponseSchema):
    type: ReadingType
    measure: str
    critical_low: float | None
    high_low: float | None
    high_high: float | None
    critical_high: float | None
    target_high: float | None
    source: str = Field(description="default (clinical guidance) or elder (set for this elder)")
    doctor_name: str | None = None
    set_by: str | None = None
    set_at: dt.datetime | None = None
    note: str | None = None


class ThresholdList(ResponseSchema):
    items: list[MeasureThreshold]


