"""The alarms' words in both languages: every type, severity, state, outcome, source and position source named."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest

import callcenter.alarms
from callcenter.alarms import services
from callcenter.alarms.models import (
    AlarmOutcome,
    AlarmSeverity,
    AlarmSource,
    AlarmState,
    AlarmType,
    LocationSource,
)
from callcenter.web.i18n import LANGUAGES, load_catalogue

DIRECTORY = Path(callcenter.alarms.__file__).parent
PREFIXES: dict[str, type[enum.StrEnum]] = {"type": AlarmType, "severity": AlarmSeverity, "state": AlarmState,
                                           "outcome": AlarmOutcome, "source": AlarmSource,
                                           "location_source": LocationSource}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_value_has_its_words(language: str) -> None:
    strings = load_catalogue(DIRECTORY, "alarms", language)
    for prefix, values in PREFIXES.items():
        for value in values:
            assert strings.get(f"alarms.{prefix}.{value.value}", "").strip(), (language, prefix, value)


def test_both_languages_have_the_same_keys() -> None:
    keys = [set(load_catalogue(DIRECTORY, "alarms", language)) for language in LANGUAGES]
    assert all(found == keys[0] for found in keys)


def test_the_work_orders_title_is_in_chinese() -> None:
    assert services.type_labels()[AlarmType.FALL] == "跌倒"
