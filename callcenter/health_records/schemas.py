"""The schemas of the health record's REST API (/api/v1/elders/{id}/examinations, …/health-visits,
…/doctor-notes, …/assessments, …/chronic-plans, /api/v1/capability-assessment)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, create_model, field_validator

from callcenter.api.schemas import MAX_INT, Note, RequestSchema, ResponseSchema, RowId, refuse_null, text
from callcenter.elders.schemas import ReadQuery
from callcenter.health_records import assessment
from callcenter.health_records.assessment import ChangeGround, Indicator
from callcenter.health_records.models import AssessmentReason, Condition, VisitKind

Name = text(100)
Short = text(200)
Day = Annotated[dt.date, Field(ge=dt.date(1900, 1, 1), le=dt.date(2999, 12, 31))]
Quantity = Annotated[float, Field(ge=0, le=10_000)]


class Masked(ResponseSchema):
    """Medical content is shown only to those who care for the elder (agents, supervisors); to others (admins,
    auditors) the row's who and when, with the content's fields named here and left out."""

    masked_fields: list[str] = Field(default_factory=list, description="fields left out for the reader's role")


class RecordedOut(Masked):
    id: int
    elder_id: int
    recorded_by: str
    recorded_at: dt.datetime


# --- examinations --------------------------------------------------------------------------------------------

class Findings(RequestSchema):
    height_cm: Quantity | None = None
    weight_kg: Quantity | None = None
    systolic: Annotated[int, Field(ge=40, le=300)] | None = Field(None, description="mmHg")
    diastolic: Annotated[int, Field(ge=20, le=200)] | None = Field(None, description="mmHg")
    heart_rate: Annotated[int, Field(ge=20, le=250)] | None = Field(None, description="beats per minute")
    fasting_glucose: Annotated[float, Field(ge=0.5, le=50)] | None = Field(None, description="mmol/L")
    summary: Note = Field(description="the examiner's summary (体检结论)")
    abnormal: Annotated[list[Short], Field(max_length=50)] = Field(  # type: ignore[valid-type]
        default_factory=list, description="abnormal findings, one each")
    advice: Note | None = Field(None, description="the examiner's advice")


class ExaminationCreate(RequestSchema):
    examined_on: Day = Field(description="the day of the examination (not in the future)")
    examiner: Name = Field(description="who examined")  # type: ignore[valid-type]
    institution: Short | None = Field(None, description="where")  # type: ignore[valid-type]
    findings: Findings


class ExaminationOut(RecordedOut):
    examined_on: dt.date
    examiner: str
    institution: str | None
    findings: dict[str, Any] | None


class ExaminationList(ResponseSchema):
    items: list[ExaminationOut]


# --- follow-up visits and notes ------------------------------------------------------------------------------

class VisitCreate(RequestSchema):
    visited_on: Day = Field(description="the day of the visit (not in the future)")
    doctor: Name = Field(description="the doctor who visited")  # type: ignore[valid-type]
    kind: VisitKind
    plan_id: RowId | None = Field(None, description="the chronic-disease plan whose scheduled visit this is: its "
                                                    "next visit falls due the plan's interval after this one")
    notes: Note | None = None


class VisitOut(RecordedOut):
    visited_on: dt.date
    doctor: str
    kind: VisitKind
    plan_id: int | None
    notes: str | None


class VisitList(ResponseSchema):
    items: list[VisitOut]


class DoctorNoteCreate(RequestSchema):
    written_on: Day = Field(description="the day the doctor gave the note (not in the future)")
    doctor: Name  # type: ignore[valid-type]
    note: Note


class DoctorNoteOut(RecordedOut):
    written_on: dt.date
    doctor: str
    note: str | None


class DoctorNoteList(ResponseSchema):
    items: list[DoctorNoteOut]


# --- the capability assessment -------------------------------------------------------------------------------

def _score(item: assessment.Item) -> Any:
    return (Annotated[int, Field(ge=0, le=item.max_score, description=f"{item.clause}: 0–{item.max_score}")], ...)


# The 26 items as an object: each required, each bounded by its scale (Appendix B), nothing else allowed.
ItemScores = create_model("ItemScores", __base__=RequestSchema,  # type: ignore[call-overload]
                          **{item.code: _score(item) for item in assessment.ITEMS})

EventCount = Annotated[int, Field(ge=0, le=99)]


class RiskEvents(RequestSchema):
    """A.2.14 近30天内照护风险事件, by kind."""

    fall: EventCount = 0
    wandering: EventCount = 0
    choking: EventCount = 0
    self_harm: EventCount = Field(0, description="suicide attempts and self-harm")
    other: EventCount = 0

    def counts(self) -> dict[assessment.RiskEvent, int]:
        return {event: getattr(self, event.value) for event in assessment.RiskEvent if getattr(self, event.value)}


class AssessmentCreate(RequestSchema):
    assessed_on: Day = Field(description="the day of the assessment (not in the future)")
    assessor: Name = Field(description="the assessor")  # type: ignore[valid-type]
    second_assessor: Name | None = Field(None, description="the second assessor, if two assessed")  # type: ignore
    reason: AssessmentReason = AssessmentReason.ROUTINE
    items: ItemScores = Field(description="every item of GB/T 42195-2022 Appendix B by its code, with its score "  # type: ignore[valid-type]
                                          "(GET /capability-assessment lists them): a missing, unknown or "
                                          "out-of-scale item is 422 naming items.<code>")
    coma: bool = Field(False, description="A.5.11 昏迷: in a coma (consciousness scored 0); the level is then "
                                          "完全失能")
    dementia: bool = Field(False, description="diagnosed dementia (F00–F03): one level up")
    mental_disorder: bool = Field(False, description="another mental or behavioural disorder diagnosed by a "
                                                     "psychiatrist (F04–F99): one level up")
    risk_events: RiskEvents = Field(default_factory=RiskEvents,
                                    description="A.2.14 care-risk events in the last 30 days by kind: two or more "
                                                "in all, one level up")


class AssessmentOut(RecordedOut):
    assessed_on: dt.date
    assessor: str
    second_assessor: str | None
    reason: AssessmentReason
    standard: str
    level: int = Field(description="the final capability level: 0 能力完好, 1 轻度失能, 2 中度失能, 3 重度失能, "
                                   "4 完全失能 (the elder's care level)")
    items: dict[str, int] | None = None
    subtotals: dict[Indicator, int] | None = None
    total: int | None = None
    preliminary_level: int | None = None
    grounds: list[ChangeGround] | None = Field(None, description="the change grounds that applied")
    risk_events: dict[str, int] | None = None
    current: bool = Field(False, description="the latest assessment: the one that set the care level")


class AssessmentList(ResponseSchema):
    items: list[AssessmentOut]
    care_level: int | None = Field(description="the elder's care level now (from the latest assessment)")


class ItemOut(ResponseSchema):
    code: str
    clause: str
    indicator: Indicator
    scores: list[int] = Field(description="the allowed scores, most able first")


class LevelOut(ResponseSchema):
    level: int
    code: str
    min_total: int
    max_total: int


class StandardOut(ResponseSchema):
    standard: str
    max_total: int
    items: list[ItemOut]
    levels: list[LevelOut]


# --- chronic-disease plans -----------------------------------------------------------------------------------

Measure = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Measurement(RequestSchema):
    measure: Measure = Field(description="what to measure: blood_pressure, glucose, spo2, weight, heart_rate, …")
    every_days: Annotated[int, Field(ge=1, le=366)] = Field(description="once every so many days")
    times: Short | None = Field(None, description="when in the day, e.g. 08:00 20:00")  # type: ignore[valid-type]


class Target(RequestSchema):
    measure: Measure
    min: Annotated[float, Field(ge=-1000, le=10_000)] | None = None
    max: Annotated[float, Field(ge=-1000, le=10_000)] | None = None
    unit: text(20) | None = None  # type: ignore[valid-type]


class Medication(RequestSchema):
    name: Name  # type: ignore[valid-type]
    dose: text(50) | None = None  # type: ignore[valid-type]
    frequency: text(50) | None = None  # type: ignore[valid-type]


class PlanFields(RequestSchema):
    conditions: Annotated[list[Condition], Field(min_length=1, max_length=10)] | None = None
    measurements: Annotated[list[Measurement], Field(max_length=20)] | None = None
    targets: Annotated[list[Target], Field(max_length=20)] | None = None
    medications: Annotated[list[Medication], Field(max_length=30)] | None = None
    visit_interval_days: Annotated[int, Field(ge=1, le=366)] | None = Field(
        None, description="a follow-up visit every so many days (90: quarterly, as the national basic public "
                          "health service asks for hypertension and diabetes)")


class PlanCreate(PlanFields):
    conditions: Annotated[list[Condition], Field(min_length=1, max_length=10)]
    visit_interval_days: Annotated[int, Field(ge=1, le=366)] = 90
    started_on: Day = Field(description="the plan's first day; the first visit falls due an interval later")
    first_visit_due: Day | None = Field(None, description="when the first visit is due, if not an interval after "
                                                          "the start")


class PlanPatch(PlanFields):
    version: Annotated[int, Field(ge=1, le=MAX_INT)] = Field(description="the version read: a stale one is 409")
    # Not behind refuse_null: its wrap hands the JSON text to the strict date check in Python mode, which refuses
    # every date. A type without None refuses null by itself; absent stays None (a default is not validated, and
    # the document leaves it out: a null default is no date).
    next_visit_due: Day = Field(None, description="move the next visit",  # type: ignore[assignment]
                                json_schema_extra=lambda schema: schema.pop("default", None))
    active: bool | None = Field(None, description="false ends the plan (no more overdue orders)")

    _no_nulls = field_validator("conditions", "measurements", "targets", "medications", "visit_interval_days",
                                "active", mode="wrap")(refuse_null)


class PlanOut(RecordedOut):
    conditions: list[Condition] | None
    measurements: list[dict[str, Any]] | None
    targets: list[dict[str, Any]] | None
    medications: list[dict[str, Any]] | None
    visit_interval_days: int
    next_visit_due: dt.date
    started_on: dt.date
    active: bool
    ended_on: dt.date | None
    version: int


class PlanList(ResponseSchema):
    items: list[PlanOut]


__all__ = ["ReadQuery"]
