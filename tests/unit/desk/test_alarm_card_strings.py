"""The alarm card names types, severities, states, outcomes and position sources in the panel's own catalogue (a
page gets only its own strings): they must say what the alarms domain's catalogue says, in both languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import callcenter.alarms
import callcenter.desk

PANEL = Path(callcenter.desk.__file__).parent / "strings"
ALARMS = Path(callcenter.alarms.__file__).parent / "strings"
# panel's prefix → the alarms catalogue's
SHARED = {"alarm_type": "type", "alarm_severity": "severity", "alarm_state": "state", "alarm_outcome": "outcome",
          "location_source": "location_source"}


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_cards_words_are_the_alarms_domains(language: str) -> None:
    panel = json.loads((PANEL / f"panel.{language}.json").read_text("utf-8"))
    alarms = json.loads((ALARMS / f"alarms.{language}.json").read_text("utf-8"))
    for ours, theirs in SHARED.items():
        mine = {key.split(".", 1)[1]: text for key, text in panel.items() if key.startswith(ours + ".")}
        wanted = {key.split(".", 1)[1]: text for key, text in alarms.items() if key.startswith(theirs + ".")}
        assert mine == wanted, ours
