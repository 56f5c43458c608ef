"""The health record's words in both languages: every item, indicator, level, change ground, risk event, reason,
visit kind and condition named."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest

import callcenter.health_records
from callcenter.health_records.assessment import ITEMS, ChangeGround, Indicator, Level, RiskEvent
from callcenter.health_records.models import AssessmentReason, Condition, VisitKind
from callcenter.web.i18n import LANGUAGES, load_catalogue

DIRECTORY = Path(callcenter.health_records.__file__).parent
PREFIXES: dict[str, type[enum.Enum]] = {"indicator": Indicator, "ground": ChangeGround, "risk_event": RiskEvent,
                                        "reason": AssessmentReason, "visit_kind": VisitKind,
                                        "condition": Condition, "level": Level}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_value_has_its_words(language: str) -> None:
    strings = load_catalogue(DIRECTORY, "health_records", language)
    for prefix, values in PREFIXES.items():
        for value in values:
            assert strings.get(f"health_records.{prefix}.{value.value}", "").strip(), (language, prefix, value)
    for item in ITEMS:
        label = strings.get(f"health_records.item.{item.code}", "")
        assert label.startswith(item.clause + " "), (language, item.code, label)


def test_both_languages_have_the_same_keys() -> None:
    keys = [set(load_catalogue(DIRECTORY, "health_records", language)) for language in LANGUAGES]
    assert all(found == keys[0] for found in keys)


def test_the_levels_are_the_standards_words() -> None:
    strings = load_catalogue(DIRECTORY, "health_records", "zh-CN")
    assert [strings[f"health_records.level.{level.value}"] for level in Level] == [
        "能力完好", "能力轻度受损（轻度失能）", "能力中度受损（中度失能）", "能力重度受损（重度失能）",
        "能力完全丧失（完全失能）"]
