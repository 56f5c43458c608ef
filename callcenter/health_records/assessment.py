"""The capability assessment of GB/T 42195-2022 老年人能力评估规范 (Assessment specifications for older adults): its
26 items in 4 first-level indicators, each item's allowed scores, the total, the preliminary level and the final
level after the change grounds. Pure functions, no I/O; docs/assessment.md cites the clause of every item and rule.

* **Items** (Appendix B, 老年人能力评估表): 自理能力 B.1.1–B.1.8 (8 items, 0–4 each: 32), 基础运动能力 B.2.1–B.2.4 (0–4,
  上下楼梯 0–3: 15), 精神状态 B.3.1–B.3.9 (six items 0–4, 攻击行为 and 抑郁症状 0–1 where 1 is "not seen",
  意识水平 0–2: 28), 感知觉与社会参与 B.4.1–B.4.5 (视力 0–2, 听力 0–2, 执行日常事务 0–4, 使用交通工具外出 0–3,
  社会交往能力 0–4: 15). Higher is more able; the total is 0–90.
* **Levels** (the standard's level table, shown in its report, Appendix C): 0 能力完好 90; 1 轻度失能 66–89;
  2 中度失能 46–65; 3 重度失能 30–45; 4 完全失能 0–29.
* **Change grounds** (C.4 能力等级变更依据, from A.5.11 昏迷, A.4.1 疾病诊断, A.2.14 近30天内照护风险事件): in a coma →
  完全失能 directly; dementia (F00–F03), another mental and behavioural disorder diagnosed by a psychiatrist
  (F04–F99), or two or more care-risk events (falls, choking, suicide/self-harm, wandering, …) in the last 30
  days → one level above the preliminary one (never above 完全失能).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping


class Indicator(enum.StrEnum):
    """The four first-level indicators (一级指标), in the standard's order."""

    SELF_CARE = "self_care"  # B.1 自理能力
    BASIC_MOTOR = "basic_motor"  # B.2 基础运动能力
    MENTAL_STATE = "mental_state"  # B.3 精神状态
    PERCEPTION_SOCIAL = "perception_social"  # B.4 感知觉与社会参与


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    code: str  # the API's name for it
    clause: str  # its number in Appendix B
    indicator: Indicator
    max_score: int  # scores run 0..max_score, each a described answer in the standard

    @property
    def scores(self) -> tuple[int, ...]:
        return tuple(range(self.max_score, -1, -1))


def _items(indicator: Indicator, prefix: str, *items: tuple[str, int]) -> tuple[Item, ...]:
    return tuple(Item(code, f"{prefix}.{number}", indicator, top) for number, (code, top) in enumerate(items, 1))


ITEMS: tuple[Item, ...] = (
    *_items(Indicator.SELF_CARE, "B.1", ("eating", 4), ("grooming", 4), ("bathing", 4), ("dressing_upper", 4),
            ("dressing_lower", 4), ("urination", 4), ("defecation", 4), ("toileting", 4)),
    *_items(Indicator.BASIC_MOTOR, "B.2", ("bed_mobility", 4), ("chair_transfer", 4), ("walking", 4), ("stairs", 3)),
    *_items(Indicator.MENTAL_STATE, "B.3", ("time_orientation", 4), ("place_orientation", 4),
            ("person_orientation", 4), ("memory", 4), ("comprehension", 4), ("expression", 4), ("aggression", 1),
            ("depression", 1), ("consciousness", 2)),
    *_items(Indicator.PERCEPTION_SOCIAL, "B.4", ("vision", 2), ("hearing", 2), ("daily_affairs", 4),
            ("transport", 3), ("social", 4)),
)
BY_CODE: dict[str, Item] = {item.code: item for item in ITEMS}
MAX_TOTAL = sum(item.max_score for item in ITEMS)  # 90
CONSCIOUSNESS = "consciousness"  # B.3.9: 0 is 昏睡 or 昏迷; a coma (A.5.11) is scored 0 here


class Level(enum.IntEnum):
    """The capability levels (能力等级): the elder's care level is this number."""

    INTACT = 0  # 能力完好
    MILD = 1  # 能力轻度受损（轻度失能）
    MODERATE = 2  # 能力中度受损（中度失能）
    SEVERE = 3  # 能力重度受损（重度失能）
    COMPLETE = 4  # 能力完全丧失（完全失能）


# The lowest total of each level (the level table: 90 / 66–89 / 46–65 / 30–45 / 0–29).
LEVEL_FLOORS: tuple[tuple[int, Level], ...] = ((90, Level.INTACT), (66, Level.MILD), (46, Level.MODERATE),
                                               (30, Level.SEVERE), (0, Level.COMPLETE))


class RiskEvent(enum.StrEnum):
    """A.2.14 近30天内照护风险事件."""

    FALL = "fall"  # 跌倒
    WANDERING = "wandering"  # 走失
    CHOKING = "choking"  # 噎食
    SELF_HARM = "self_harm"  # 自杀、自伤
    OTHER = "other"  # 其他


RISK_EVENTS_THAT_RAISE = 2  # "近30天内发生过2次及以上照护风险事件"


class ChangeGround(enum.StrEnum):
    """Why the final level differs from the preliminary one (C.4)."""

    COMA = "coma"
    DEMENTIA = "dementia"  # F00–F03
    MENTAL_DISORDER = "mental_disorder"  # F04–F99, diagnosed by a psychiatrist
    RISK_EVENTS = "risk_events"  # two or more in the last 30 days


@dataclasses.dataclass(frozen=True, slots=True)
class Grounds:
    coma: bool = False
    dementia: bool = False
    mental_disorder: bool = False
    risk_events: Mapping[RiskEvent, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    subtotals: dict[Indicator, int]
    total: int
    preliminary_level: Level
    level: Level
    grounds: tuple[ChangeGround, ...]  # the change grounds that applied, in C.4's order


class ItemErrors(ValueError):
    """Answers the standard does not allow: ``errors`` maps the field (``items.<code>``, ``coma``) to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def level_of(total: int) -> Level:
    if not 0 <= total <= MAX_TOTAL:
        raise ValueError(f"a total runs 0..{MAX_TOTAL}, not {total}")
    return next(level for floor, level in LEVEL_FLOORS if total >= floor)


def check(answers: Mapping[str, object], grounds: Grounds) -> dict[str, int]:
    """The answers as scores, or ``ItemErrors`` naming every missing, unknown or out-of-scale item (and a coma
    scored as conscious)."""
    errors: dict[str, str] = {}
    for code in answers:
        if code not in BY_CODE:
            errors[f"items.{code}"] = "not an item of GB/T 42195-2022"
    scores: dict[str, int] = {}
    for item in ITEMS:
        if item.code not in answers:
            errors[f"items.{item.code}"] = f"required ({item.clause})"
            continue
        value = answers[item.code]
        if isinstance(value, bool) or not isinstance(value, int) or value not in item.scores:
            allowed = ", ".join(str(score) for score in sorted(item.scores))
            errors[f"items.{item.code}"] = f"{item.clause} is scored one of {allowed}, not {value!r}"
            continue
        scores[item.code] = value
    if grounds.coma and scores.get(CONSCIOUSNESS, 0) != 0:
        errors["coma"] = "an elder in a coma scores 0 on B.3.9 (consciousness)"
    if errors:
        raise ItemErrors(errors)
    return scores


def assess(answers: Mapping[str, object], grounds: Grounds) -> Result:
    """Score one assessment: the subtotals, the total, the preliminary level and the final one."""
    scores = check(answers, grounds)
    subtotals = {indicator: sum(scores[item.code] for item in ITEMS if item.indicator is indicator)
                 for indicator in Indicator}
    total = sum(subtotals.values())
    preliminary = level_of(total)
    applied: list[ChangeGround] = []
    if grounds.coma:
        applied.append(ChangeGround.COMA)
    if grounds.dementia:
        applied.append(ChangeGround.DEMENTIA)
    if grounds.mental_disorder:
        applied.append(ChangeGround.MENTAL_DISORDER)
    if sum(grounds.risk_events.values()) >= RISK_EVENTS_THAT_RAISE:
        applied.append(ChangeGround.RISK_EVENTS)
    if grounds.coma:
        level = Level.COMPLETE
    elif applied:
        # "有以下情况之一…在原有能力级别上提高一个级别": one level up, however many grounds apply (docs/assessment.md).
        level = Level(min(preliminary + 1, Level.COMPLETE))
    else:
        level = preliminary
    return Result(subtotals=subtotals, total=total, preliminary_level=preliminary, level=level,
                  grounds=tuple(applied))
