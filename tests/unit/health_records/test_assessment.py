"""GB/T 42195-2022 scoring against worked examples from its tables: the 26 items and their scales (Appendix B),
the totals of each level (90 / 66–89 / 46–65 / 30–45 / 0–29) and the change grounds of the report (C.4); every
bad answer is named."""

from __future__ import annotations

import pytest

from callcenter.health_records.assessment import (
    ITEMS,
    MAX_TOTAL,
    ChangeGround,
    Grounds,
    Indicator,
    ItemErrors,
    Level,
    RiskEvent,
    assess,
    level_of,
)
from tests.unit.health_records.factory import answers_totalling, full_marks

NONE = Grounds()


def test_the_standard_has_26_items_in_four_indicators_worth_90() -> None:
    counts = {indicator: [item.code for item in ITEMS if item.indicator is indicator] for indicator in Indicator}
    assert {indicator: len(codes) for indicator, codes in counts.items()} == {
        Indicator.SELF_CARE: 8, Indicator.BASIC_MOTOR: 4, Indicator.MENTAL_STATE: 9, Indicator.PERCEPTION_SOCIAL: 5}
    tops = {indicator: sum(item.max_score for item in ITEMS if item.indicator is indicator) for indicator in Indicator}
    assert tops == {Indicator.SELF_CARE: 32, Indicator.BASIC_MOTOR: 15, Indicator.MENTAL_STATE: 28,
                    Indicator.PERCEPTION_SOCIAL: 15}
    assert MAX_TOTAL == 90
    clauses = [item.clause for item in ITEMS]
    assert clauses[:3] == ["B.1.1", "B.1.2", "B.1.3"] and clauses[11] == "B.2.4" and clauses[-1] == "B.4.5"
    scales = {item.code: item.max_score for item in ITEMS}
    # The scales that are not 0–4 (Appendix B): stairs and transport 0–3, vision and hearing 0–2, consciousness 0–2,
    # aggression and depression 1 (not seen) or 0.
    assert {code: top for code, top in scales.items() if top != 4} == {
        "stairs": 3, "aggression": 1, "depression": 1, "consciousness": 2, "vision": 2, "hearing": 2, "transport": 3}


@pytest.mark.parametrize(("total", "level"), [
    (90, Level.INTACT), (89, Level.MILD), (66, Level.MILD), (65, Level.MODERATE), (46, Level.MODERATE),
    (45, Level.SEVERE), (30, Level.SEVERE), (29, Level.COMPLETE), (0, Level.COMPLETE)])
def test_each_level_begins_and_ends_where_the_standard_says(total: int, level: Level) -> None:
    assert level_of(total) is level
    result = assess(answers_totalling(total), NONE)
    assert (result.total, result.preliminary_level, result.level, result.grounds) == (total, level, level, ())


def test_full_marks_is_intact_and_one_point_less_is_mild() -> None:
    result = assess(full_marks(), NONE)
    assert (result.total, result.level) == (90, Level.INTACT)
    assert result.subtotals == {Indicator.SELF_CARE: 32, Indicator.BASIC_MOTOR: 15, Indicator.MENTAL_STATE: 28,
                                Indicator.PERCEPTION_SOCIAL: 15}
    # One episode of aggression in the last month (B.3.7 scores 0) is enough to leave 能力完好.
    assert assess({**full_marks(), "aggression": 0}, NONE).level is Level.MILD


def test_a_worked_report_52_points_is_moderate() -> None:
    # A report whose indicators score 18 + 8 + 12 + 14 (C.1): 52 in all, 46–65 → 中度失能.
    answers = {"eating": 3, "grooming": 2, "bathing": 1, "dressing_upper": 3, "dressing_lower": 2, "urination": 3,
               "defecation": 3, "toileting": 1,
               "bed_mobility": 3, "chair_transfer": 2, "walking": 2, "stairs": 1,
               "time_orientation": 2, "place_orientation": 1, "person_orientation": 3, "memory": 1,
               "comprehension": 2, "expression": 2, "aggression": 0, "depression": 0, "consciousness": 1,
               "vision": 2, "hearing": 2, "daily_affairs": 4, "transport": 2, "social": 4}
    result = assess(answers, NONE)
    assert result.subtotals == {Indicator.SELF_CARE: 18, Indicator.BASIC_MOTOR: 8, Indicator.MENTAL_STATE: 12,
                                Indicator.PERCEPTION_SOCIAL: 14}
    assert (result.total, result.level) == (52, Level.MODERATE)
    # Diagnosed dementia raises it one level (C.4): 重度失能.
    raised = assess(answers, Grounds(dementia=True))
    assert (raised.preliminary_level, raised.level, raised.grounds) == (
        Level.MODERATE, Level.SEVERE, (ChangeGround.DEMENTIA,))


def test_the_change_grounds_raise_one_level_and_a_coma_is_complete() -> None:
    mild = answers_totalling(80, consciousness=0)
    assert assess(mild, Grounds(mental_disorder=True)).level is Level.MODERATE
    # Two care-risk events in 30 days, of any kinds together, raise it; one does not.
    assert assess(mild, Grounds(risk_events={RiskEvent.FALL: 1, RiskEvent.CHOKING: 1})).level is Level.MODERATE
    assert assess(mild, Grounds(risk_events={RiskEvent.FALL: 1})).level is Level.MILD
    # Several grounds together still raise it one level.
    both = assess(mild, Grounds(dementia=True, risk_events={RiskEvent.WANDERING: 3}))
    assert both.level is Level.MODERATE and both.grounds == (ChangeGround.DEMENTIA, ChangeGround.RISK_EVENTS)
    # Never beyond 完全失能.
    assert assess(answers_totalling(10), Grounds(dementia=True)).level is Level.COMPLETE
    # In a coma: 完全失能 whatever the total.
    coma = assess(mild, Grounds(coma=True))
    assert (coma.preliminary_level, coma.level, coma.grounds) == (Level.MILD, Level.COMPLETE, (ChangeGround.COMA,))


@pytest.mark.parametrize(("change", "field"), [
    ({"eating": 5}, "items.eating"),  # above the scale
    ({"stairs": 4}, "items.stairs"),  # B.2.4 tops at 3
    ({"aggression": 2}, "items.aggression"),  # 1 or 0
    ({"consciousness": 3}, "items.consciousness"),
    ({"vision": -1}, "items.vision"),
    ({"hearing": True}, "items.hearing"),  # a yes is no score
    ({"memory": 2.0}, "items.memory"),
    ({"social": "4"}, "items.social"),
    ({"cooking": 2}, "items.cooking"),  # not an item of the standard
])
def test_every_bad_answer_is_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(ItemErrors) as raised:
        assess({**full_marks(), **change}, NONE)
    assert list(raised.value.errors) == [field]


def test_every_missing_item_is_named_at_once() -> None:
    answers = full_marks()
    del answers["toileting"], answers["transport"]
    with pytest.raises(ItemErrors) as raised:
        assess({**answers, "walking": 9}, NONE)
    assert set(raised.value.errors) == {"items.toileting", "items.transport", "items.walking"}
    assert "B.1.8" in raised.value.errors["items.toileting"] and "0, 1, 2, 3, 4" in raised.value.errors["items.walking"]


def test_a_coma_scored_as_conscious_is_refused() -> None:
    with pytest.raises(ItemErrors) as raised:
        assess(full_marks(), Grounds(coma=True))
    assert list(raised.value.errors) == ["coma"]
