"""An elder's health record (seed 5.4, 5.5, 5.11.2): physical examinations, follow-up visits, the doctor's notes,
capability assessments (GB/T 42195-2022) and chronic-disease plans, with the work orders raised for overdue visits.

What is medical is sealed at rest (``Sealed``): findings, notes, scores, diagnoses, targets, medicines. What the
platform must search or schedule by stays plain and says nothing medical: dates, who wrote it, the visit's kind,
the plan's next due date, the final capability level (already the elder's plain ``care_level``).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed

# The tables the foreign keys point at must be in the metadata wherever these models are used.
from callcenter.elders import models as _elders  # noqa: F401
from callcenter.orders import models as _orders  # noqa: F401
from callcenter.users import models as _users  # noqa: F401


class RecordedBy:
    """Who entered a row, and when (the name at the time: the record stays readable if the account goes)."""

    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Examination(RecordedBy, Base):
    """A physical examination (体检): when, by whom, where, and what was found."""

    __tablename__ = "health_examinations"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    examined_on: Mapped[dt.date] = mapped_column(Date)
    examiner: Mapped[str] = mapped_column(String(100))
    institution: Mapped[str | None] = mapped_column(String(200))
    # {height_cm, weight_kg, systolic, diastolic, heart_rate, fasting_glucose, summary, abnormal: [..], advice}
    findings: Mapped[dict[str, Any]] = mapped_column(Sealed("health_examinations.findings", json=True))


class VisitKind(enum.StrEnum):
    HOME = "home"  # the community doctor at the elder's home
    CLINIC = "clinic"  # the elder at the community health centre
    PHONE = "phone"
    VIDEO = "video"


class Visit(RecordedBy, Base):
    """A follow-up visit (随访) by a doctor; it may fulfil a chronic-disease plan's scheduled visit."""

    __tablename__ = "health_visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    visited_on: Mapped[dt.date] = mapped_column(Date)
    doctor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[VisitKind] = mapped_column(str_enum(VisitKind, "health_visit_kind"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("chronic_disease_plans.id", ondelete="RESTRICT"),
                                                index=True)
    notes: Mapped[str | None] = mapped_column(Sealed("health_visits.notes"))


class DoctorNote(RecordedBy, Base):
    """A doctor's note on the elder (医嘱, observations)."""

    __tablename__ = "health_doctor_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    written_on: Mapped[dt.date] = mapped_column(Date)
    doctor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Sealed("health_doctor_notes.note"))


class AssessmentReason(enum.StrEnum):
    """A.1 评估原因."""

    FIRST = "first"  # 首次评估
    ROUTINE = "routine"  # 常规评估
    IMMEDIATE = "immediate"  # 即时评估 (after a change in condition)
    REVIEW = "review"  # 因对评估结果有疑问进行的复评
    OTHER = "other"


class CapabilityAssessment(RecordedBy, Base):
    """One GB/T 42195-2022 assessment. Every one is kept (the history); the newest by date sets the elder's care
    level."""

    __tablename__ = "capability_assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    assessed_on: Mapped[dt.date] = mapped_column(Date)
    assessor: Mapped[str] = mapped_column(String(100))
    second_assessor: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[AssessmentReason] = mapped_column(str_enum(AssessmentReason, "assessment_reason"))
    standard: Mapped[str] = mapped_column(String(32), default="GB/T 42195-2022")
    # {"items": {code: score}, "subtotals": {indicator: n}, "total": n, "preliminary_level": n}
    scores: Mapped[dict[str, Any]] = mapped_column(Sealed("capability_assessments.scores", json=True))
    # {"coma": bool, "dementia": bool, "mental_disorder": bool, "risk_events": {event: n}, "applied": [ground]}
    grounds: Mapped[dict[str, Any]] = mapped_column(Sealed("capability_assessments.grounds", json=True))
    # The final level (0 能力完好 .. 4 完全失能): what the elder's care_level becomes; plain, as care_level is.
    level: Mapped[int] = mapped_column(Integer)


class Condition(enum.StrEnum):
    HYPERTENSION = "hypertension"
    DIABETES = "diabetes"
    COPD = "copd"
    CORONARY_HEART_DISEASE = "coronary_heart_disease"
    STROKE = "stroke"
    CHRONIC_KIDNEY_DISEASE = "chronic_kidney_disease"
    OTHER = "other"


class ChronicPlan(RecordedBy, Base):
    """A chronic-disease management plan (慢病管理): the conditions, what to measure and how often, the targets,
    the medicines, and the follow-up visits every ``visit_interval_days``. ``next_visit_due`` moves on with each
    visit recorded against the plan; past it, the overdue scan raises a work order for the community doctor."""

    __tablename__ = "chronic_disease_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="RESTRICT"), index=True)
    conditions: Mapped[list[str]] = mapped_column(Sealed("chronic_disease_plans.conditions", json=True))
    # [{"measure": "blood_pressure", "every_days": 1, "times": "08:00 20:00"}]
    measurements: Mapped[list[dict[str, Any]]] = mapped_column(
        Sealed("chronic_disease_plans.measurements", json=True))
    # [{"measure": "systolic", "min": null, "max": 140, "unit": "mmHg"}]
    targets: Mapped[list[dict[str, Any]]] = mapped_column(Sealed("chronic_disease_plans.targets", json=True))
    # [{"name": "氨氯地平片", "dose": "5 mg", "frequency": "每日一次"}]
    medications: Mapped[list[dict[str, Any]]] = mapped_column(
        Sealed("chronic_disease_plans.medications", json=True))
    visit_interval_days: Mapped[int] = mapped_column(Integer)
    next_visit_due: Mapped[dt.date] = mapped_column(Date, index=True)
    started_on: Mapped[dt.date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    # Moves on every change: a change made on what was read before another's is refused (409).
    version: Mapped[int] = mapped_column(Integer, default=1)


class OverdueVisitOrder(Base):
    """The work order raised for one overdue visit of a plan: at most one per plan and due date, however many
    scans see it overdue."""

    __tablename__ = "chronic_plan_overdue_orders"
    __table_args__ = (UniqueConstraint("plan_id", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("chronic_disease_plans.id", ondelete="RESTRICT"), index=True)
    due_on: Mapped[dt.date] = mapped_column(Date)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="RESTRICT"), index=True)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
