"""Thresholds: the default limits per reading type and measure, from clinical guidance (docs/architecture.md,
"Health readings", cites each), an elder's own overrides, and what a reading's values make of them.

A measure's ``Limits`` are inclusive bounds: a value at or beyond ``critical_low``/``critical_high`` is a critical
vital-sign alarm, at or beyond ``high_low``/``high_high`` a high one. ``target_high`` is the elder's treatment
target: a value above it is no alarm, but three of them within seven days are a trend for the community doctor
(``readings.services``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from callcenter.alarms.models import SEVERITY_RANK, AlarmSeverity
from callcenter.readings.models import ReadingType

LIMIT_NAMES = ("critical_low", "high_low", "high_high", "critical_high", "target_high")


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    critical_low: float | None = None
    high_low: float | None = None
    high_high: float | None = None
    critical_high: float | None = None
    target_high: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in LIMIT_NAMES}

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Limits:
        return cls(**{name: values.get(name) for name in LIMIT_NAMES})

    def breach(self, value: float) -> tuple[AlarmSeverity, str, float] | None:
        """The most severe bound ``value`` reaches: (severity, the bound's name, its limit), or None."""
        checks = (("critical_low", AlarmSeverity.CRITICAL, lambda limit: value <= limit),
                  ("critical_high", AlarmSeverity.CRITICAL, lambda limit: value >= limit),
                  ("high_low", AlarmSeverity.HIGH, lambda limit: value <= limit),
                  ("high_high", AlarmSeverity.HIGH, lambda limit: value >= limit))
        for name, severity, reached in checks:
            limit = getattr(self, name)
            if limit is not None and reached(limit):
                return severity, name, limit
        return None


# The measures of each type a threshold may be set on (the numbers among its values).
MEASURES: dict[ReadingType, tuple[str, ...]] = {
    ReadingType.BLOOD_PRESSURE: ("systolic_mmhg", "diastolic_mmhg"),
    ReadingType.HEART_RATE: ("bpm",),
    ReadingType.SPO2: ("percent",),
    ReadingType.GLUCOSE: ("mmol_l",),
    ReadingType.TEMPERATURE: ("celsius",),
    ReadingType.WEIGHT: ("kg",),
    ReadingType.STEPS: ("count",),
}

# The defaults (sources in docs/architecture.md, "Health readings"):
# - blood pressure: grade 3 hypertension (SBP >= 180 or DBP >= 110, Chinese guidelines for the prevention and
#   treatment of hypertension, 2018 revision) is urgent: high. SBP >= 220 (NEWS2: 3 points) or DBP >= 120 (the
#   hypertensive-crisis bound, ACC/AHA 2017) is critical, as is SBP <= 90 (NEWS2: 3 points). Target < 140/90 (the
#   Chinese guideline's target for 65-79; 150/90 from 80, see ``default_limits``).
# - heart rate, SpO2, temperature: NEWS2 (Royal College of Physicians, 2017): a single parameter scoring 3 is
#   critical, 2 is high. SpO2 < 90 % critical (home oximeters read +-2 %, so NEWS2's <= 91 is relaxed to < 90).
# - glucose: hypoglycaemia level 2 (< 3.0 mmol/L) critical, level 1 (< 3.9) high; >= 16.7 mmol/L (screen for
#   DKA/HHS) high, >= 33.3 (HHS range) critical (Chinese guideline for type 2 diabetes, 2020; ADA Standards of
#   Care, section 6).
# - weight, steps: no single value is an emergency; a doctor sets limits for an elder who needs them.
DEFAULTS: dict[ReadingType, dict[str, Limits]] = {
    ReadingType.BLOOD_PRESSURE: {
        "systolic_mmhg": Limits(critical_low=90, high_high=180, critical_high=220, target_high=140),
        "diastolic_mmhg": Limits(high_high=110, critical_high=120, target_high=90),
    },
    ReadingType.HEART_RATE: {"bpm": Limits(critical_low=40, high_high=111, critical_high=131)},
    ReadingType.SPO2: {"percent": Limits(critical_low=89, high_low=93)},
    ReadingType.GLUCOSE: {"mmol_l": Limits(critical_low=2.9, high_low=3.8, high_high=16.7, critical_high=33.3)},
    ReadingType.TEMPERATURE: {"celsius": Limits(critical_low=35.0, high_high=39.1)},
    ReadingType.WEIGHT: {"kg": Limits()},
    ReadingType.STEPS: {"count": Limits()},
}
# From 80 the Chinese guideline's systolic target is < 150 mmHg.
VERY_OLD = 80
VERY_OLD_SYSTOLIC_TARGET = 150.0


def default_limits(reading_type: ReadingType, measure: str, *, birth_date: dt.date | None,
                   today: dt.date) -> Limits:
    limits = DEFAULTS[reading_type][measure]
    if reading_type is ReadingType.BLOOD_PRESSURE and measure == "systolic_mmhg" and birth_date is not None:
        age = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
        if age >= VERY_OLD:
            return dataclasses.replace(limits, target_high=VERY_OLD_SYSTOLIC_TARGET)
    return limits


@dataclasses.dataclass(frozen=True, slots=True)
class Breach:
    measure: str
    value: float
    severity: AlarmSeverity
    bound: str  # which limit: critical_low, high_high, …
    limit: float
    source: str  # "default" or "elder"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"severity": self.severity.value}


def breaches(values: Mapping[str, Any], limits: Mapping[str, tuple[Limits, str]]) -> list[Breach]:
    """Each measure of ``values`` out of its limits (``limits``: measure → (limits, their source)), the most severe
    first."""
    found = []
    for measure, (measure_limits, source) in limits.items():
        value = values.get(measure)
        if isinstance(value, int | float) and not isinstance(value, bool):
            hit = measure_limits.breach(float(value))
            if hit is not None:
                found.append(Breach(measure, float(value), hit[0], hit[1], hit[2], source))
    return sorted(found, key=lambda breach: SEVERITY_RANK[breach.severity])


def worst(found: list[Breach]) -> AlarmSeverity:
    return min((breach.severity for breach in found), key=SEVERITY_RANK.__getitem__)


def above_target(values: Mapping[str, Any], limits: Mapping[str, tuple[Limits, str]]) -> bool | None:
    """Whether any measure is above its target; None when no measure of the type has a target."""
    targets = {measure: lim.target_high for measure, (lim, _) in limits.items() if lim.target_high is not None}
    if not targets:
        return None
    return any(isinstance(values.get(measure), int | float) and values[measure] > target
               for measure, target in targets.items())
