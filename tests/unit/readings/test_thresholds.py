"""The default limits and how a reading's values meet them: the bounds are inclusive, the most severe breach comes
first, and the systolic target follows the guideline's age bands."""

from __future__ import annotations

import datetime as dt

from callcenter.alarms.models import AlarmSeverity
from callcenter.readings.models import ReadingType
from callcenter.readings.thresholds import DEFAULTS, MEASURES, Limits, above_target, breaches, default_limits

TODAY = dt.date(2026, 12, 7)


def _defaults(reading_type: ReadingType) -> dict[str, tuple[Limits, str]]:
    return {measure: (limits, "default") for measure, limits in DEFAULTS[reading_type].items()}


def test_every_measure_of_every_type_has_its_defaults() -> None:
    assert {reading_type: tuple(DEFAULTS[reading_type]) for reading_type in ReadingType} == MEASURES


def test_bounds_are_inclusive_and_the_most_severe_comes_first() -> None:
    pressure = _defaults(ReadingType.BLOOD_PRESSURE)
    assert breaches({"systolic_mmhg": 179, "diastolic_mmhg": 109}, pressure) == []
    [at_180] = breaches({"systolic_mmhg": 180, "diastolic_mmhg": 100}, pressure)
    assert (at_180.severity, at_180.bound, at_180.limit) == (AlarmSeverity.HIGH, "high_high", 180)
    both = breaches({"systolic_mmhg": 185, "diastolic_mmhg": 120}, pressure)
    assert [(breach.measure, breach.severity) for breach in both] == [
        ("diastolic_mmhg", AlarmSeverity.CRITICAL), ("systolic_mmhg", AlarmSeverity.HIGH)]
    oxygen = _defaults(ReadingType.SPO2)
    assert [breach.severity for breach in breaches({"percent": 89}, oxygen)] == [AlarmSeverity.CRITICAL]
    assert [breach.severity for breach in breaches({"percent": 90}, oxygen)] == [AlarmSeverity.HIGH]
    assert breaches({"percent": 94}, oxygen) == []


def test_the_systolic_target_is_150_from_80_years_and_140_before() -> None:
    seventy_nine = default_limits(ReadingType.BLOOD_PRESSURE, "systolic_mmhg", birth_date=dt.date(1947, 12, 8),
                                  today=TODAY)
    eighty = default_limits(ReadingType.BLOOD_PRESSURE, "systolic_mmhg", birth_date=dt.date(1946, 12, 7),
                            today=TODAY)
    unknown = default_limits(ReadingType.BLOOD_PRESSURE, "systolic_mmhg", birth_date=None, today=TODAY)
    assert (seventy_nine.target_high, eighty.target_high, unknown.target_high) == (140, 150, 140)
    assert eighty.high_high == 180  # only the target moves
    limits = {"systolic_mmhg": (eighty, "default"), "diastolic_mmhg": (DEFAULTS[ReadingType.BLOOD_PRESSURE][
        "diastolic_mmhg"], "default")}
    assert above_target({"systolic_mmhg": 146, "diastolic_mmhg": 80}, limits) is False
    assert above_target({"systolic_mmhg": 146, "diastolic_mmhg": 92}, limits) is True
    assert above_target({"kg": 90.0}, _defaults(ReadingType.WEIGHT)) is None  # no target: no trend
