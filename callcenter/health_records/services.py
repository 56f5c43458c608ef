"""The health record's services: examinations, follow-up visits, doctor's notes, capability assessments (with the
elder's care level), chronic-disease plans, and the overdue-visit orders. Socket-free: each takes the caller's
session and writes its audit entry in the same transaction, so a refused request leaves nothing behind."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.health_records import assessment
from callcenter.health_records.models import (
    AssessmentReason,
    CapabilityAssessment,
    ChronicPlan,
    DoctorNote,
    Examination,
    OverdueVisitOrder,
    Visit,
    VisitKind,
)
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.orders.trail import SYSTEM
from callcenter.users.models import Role

# Audit actions: one prefix, so ``GET /audit?action=health.`` lists every read and change of health records.
EXAMINATION_CREATE = "health.examination.create"
VISIT_CREATE = "health.visit.create"
NOTE_CREATE = "health.note.create"
ASSESSMENT_CREATE = "health.assessment.create"
PLAN_CREATE = "health.plan.create"
PLAN_UPDATE = "health.plan.update"
VISIT_OVERDUE = "health.plan.visit_overdue"
READS = {"examinations": "health.examinations.read", "visits": "health.visits.read",
         "notes": "health.notes.read", "assessments": "health.assessments.read", "plans": "health.plans.read"}

# Who sees what is medical. Agents and supervisors care for the elder (the call, the order, the visit); admins
# and auditors see who recorded what and when, not the findings (GB/T 35273: the minimum necessary). Providers'
# portal accounts see nothing of it: the routes refuse them.
CONTENT_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR})
OVERDUE_TITLE = "慢病随访逾期"
SYSTEM_ACTOR = Actor(id=None, label=SYSTEM)


def sees_content(role: Role) -> bool:
    return role in CONTENT_ROLES


async def get_elder(session: AsyncSession, elder_id: int) -> Elder:
    elder = await session.get(Elder, elder_id)
    if elder is None:
        raise NotFound(f"no elder {elder_id}", field="id")
    return elder


def _not_future(day: dt.date, today: dt.date, field: str) -> None:
    if day > today:
        raise Invalid(f"{day.isoformat()} is in the future (today is {today.isoformat()})", field=field)


def _stamp(row: Any, actor: Actor) -> None:
    row.recorded_by_id = actor.id
    row.recorded_by = actor.label[:100]


# --- examinations, visits, notes -----------------------------------------------------------------------------

async def add_examination(session: AsyncSession, elder_id: int, *, examined_on: dt.date, examiner: str,
                          institution: str | None, findings: dict[str, Any], actor: Actor,
                          today: dt.date) -> Examination:
    await get_elder(session, elder_id)
    _not_future(examined_on, today, "examined_on")
    row = Examination(elder_id=elder_id, examined_on=examined_on, examiner=examiner, institution=institution,
                      findings=findings)
    _stamp(row, actor)
    session.add(row)
    await session.flush()
    record(session, actor, action=EXAMINATION_CREATE, target_type="elder", target_id=elder_id,
           details={"examination_id": row.id, "fields": sorted(key for key, value in findings.items()
                                                                if value not in (None, []))})
    return row


async def add_visit(session: AsyncSession, elder_id: int, *, visited_on: dt.date, doctor: str, kind: VisitKind,
                    plan_id: int | None, notes: str | None, actor: Actor, today: dt.date) -> Visit:
    """A follow-up visit; one made for a plan moves the plan's next visit to an interval after it (a visit older
    than the plan's last one moves nothing)."""
    await get_elder(session, elder_id)
    _not_future(visited_on, today, "visited_on")
    plan = None
    if plan_id is not None:
        plan = await session.get(ChronicPlan, plan_id, with_for_update=True)
        if plan is None or plan.elder_id != elder_id:
            raise Invalid(f"elder {elder_id} has no chronic-disease plan {plan_id}", field="plan_id")
    row = Visit(elder_id=elder_id, visited_on=visited_on, doctor=doctor, kind=kind, plan_id=plan_id, notes=notes)
    _stamp(row, actor)
    session.add(row)
    details: dict[str, Any] = {"kind": kind.value, "plan_id": plan_id}
    if plan is not None:
        following = visited_on + dt.timedelta(days=plan.visit_interval_days)
        if following > plan.next_visit_due:
            details["next_visit_due"] = {"from": plan.next_visit_due.isoformat(), "to": following.isoformat()}
            plan.next_visit_due = following
            plan.version += 1
    await session.flush()
    record(session, actor, action=VISIT_CREATE, target_type="elder", target_id=elder_id,
           details={"visit_id": row.id, **details})
    return row


async def add_note(session: AsyncSession, elder_id: int, *, written_on: dt.date, doctor: str, note: str,
                   actor: Actor, today: dt.date) -> DoctorNote:
    await get_elder(session, elder_id)
    _not_future(written_on, today, "written_on")
    row = DoctorNote(elder_id=elder_id, written_on=written_on, doctor=doctor, note=note)
    _stamp(row, actor)
    session.add(row)
    await session.flush()
    record(session, actor, action=NOTE_CREATE, target_type="elder", target_id=elder_id,
           details={"note_id": row.id})
    return row


async def examinations(session: AsyncSession, elder_id: int) -> Sequence[Examination]:
    await get_elder(session, elder_id)
    return (await session.scalars(select(Examination).where(Examination.elder_id == elder_id).order_by(
        Examination.examined_on.desc(), Examination.id.desc()))).all()


async def visits(session: AsyncSession, elder_id: int) -> Sequence[Visit]:
    await get_elder(session, elder_id)
    return (await session.scalars(select(Visit).where(Visit.elder_id == elder_id).order_by(
        Visit.visited_on.desc(), Visit.id.desc()))).all()


async def notes(session: AsyncSession, elder_id: int) -> Sequence[DoctorNote]:
    await get_elder(session, elder_id)
    return (await session.scalars(select(DoctorNote).where(DoctorNote.elder_id == elder_id).order_by(
        DoctorNote.written_on.desc(), DoctorNote.id.desc()))).all()


# --- capability assessments ----------------------------------------------------------------------------------

def _newest_first(query: Any) -> Any:
    return query.order_by(CapabilityAssessment.assessed_on.desc(), CapabilityAssessment.id.desc())


async def add_assessment(session: AsyncSession, elder_id: int, *, assessed_on: dt.date, assessor: str,
                         second_assessor: str | None, reason: AssessmentReason, items: Mapping[str, object],
                         grounds: assessment.Grounds, actor: Actor, today: dt.date) -> CapabilityAssessment:
    """Score the answers (``assessment.assess``: 422 naming every bad item), keep the assessment, and set the
    elder's care level from the latest one by date (an older assessment entered late changes the history only)."""
    elder = await session.get(Elder, elder_id, with_for_update=True)
    if elder is None:
        raise NotFound(f"no elder {elder_id}", field="id")
    _not_future(assessed_on, today, "assessed_on")
    try:
        result = assessment.assess(items, grounds)
    except assessment.ItemErrors as error:
        details: list[dict[str, str | None]] = [{"field": field, "message": message}
                                                for field, message in error.errors.items()]
        first = details[0]
        raise Invalid(f"{first['field']}: {first['message']}", field=first["field"],
                      details=details if len(details) > 1 else None) from None
    row = CapabilityAssessment(
        elder_id=elder_id, assessed_on=assessed_on, assessor=assessor, second_assessor=second_assessor,
        reason=reason, level=int(result.level),
        scores={"items": {item.code: items[item.code] for item in assessment.ITEMS},
                "subtotals": {indicator.value: value for indicator, value in result.subtotals.items()},
                "total": result.total, "preliminary_level": int(result.preliminary_level)},
        grounds={"coma": grounds.coma, "dementia": grounds.dementia, "mental_disorder": grounds.mental_disorder,
                 "risk_events": {event.value: count for event, count in grounds.risk_events.items()},
                 "applied": [ground.value for ground in result.grounds]})
    _stamp(row, actor)
    session.add(row)
    await session.flush()
    latest = await session.scalar(_newest_first(select(CapabilityAssessment.id).where(
        CapabilityAssessment.elder_id == elder_id)).limit(1))
    changed = latest == row.id and elder.care_level != row.level
    if latest == row.id:
        elder.care_level = row.level
    # Names and numbers of the record, never its scores: the level is the elder's care level, already on the file.
    record(session, actor, action=ASSESSMENT_CREATE, target_type="elder", target_id=elder_id,
           details={"assessment_id": row.id, "reason": reason.value, "current": latest == row.id,
                    "care_level_changed": changed})
    return row


async def assessments(session: AsyncSession, elder_id: int) -> tuple[Elder, Sequence[CapabilityAssessment]]:
    elder = await get_elder(session, elder_id)
    rows = (await session.scalars(_newest_first(select(CapabilityAssessment).where(
        CapabilityAssessment.elder_id == elder_id)))).all()
    return elder, rows


# --- chronic-disease plans -----------------------------------------------------------------------------------

def _plain(values: Sequence[Any] | None) -> list[Any]:
    return [value.model_dump(mode="json", exclude_none=True) if hasattr(value, "model_dump") else value
            for value in values or ()]


async def create_plan(session: AsyncSession, elder_id: int, *, conditions: Sequence[str],
                      measurements: Sequence[Any] | None, targets: Sequence[Any] | None,
                      medications: Sequence[Any] | None, visit_interval_days: int, started_on: dt.date,
                      first_visit_due: dt.date | None, actor: Actor) -> ChronicPlan:
    await get_elder(session, elder_id)
    due = first_visit_due or started_on + dt.timedelta(days=visit_interval_days)
    if due < started_on:
        raise Invalid("the first visit cannot fall due before the plan starts", field="first_visit_due")
    plan = ChronicPlan(elder_id=elder_id, conditions=[str(condition) for condition in dict.fromkeys(conditions)],
                       measurements=_plain(measurements), targets=_plain(targets), medications=_plain(medications),
                       visit_interval_days=visit_interval_days, next_visit_due=due, started_on=started_on,
                       active=True, version=1)
    _stamp(plan, actor)
    session.add(plan)
    await session.flush()
    record(session, actor, action=PLAN_CREATE, target_type="elder", target_id=elder_id,
           details={"plan_id": plan.id, "next_visit_due": due.isoformat()})
    return plan


_SEALED_FIELDS = ("conditions", "measurements", "targets", "medications")


async def update_plan(session: AsyncSession, elder_id: int, plan_id: int, *, version: int,
                      changes: Mapping[str, Any], actor: Actor, today: dt.date) -> ChronicPlan:
    """Change a plan if ``version`` is the one read (else 409, nothing changes); ``active: false`` ends it."""
    await get_elder(session, elder_id)
    plan = await session.get(ChronicPlan, plan_id, with_for_update=True)
    if plan is None or plan.elder_id != elder_id:
        raise NotFound(f"elder {elder_id} has no chronic-disease plan {plan_id}", field="plan_id")
    if plan.version != version:
        raise Conflict(f"chronic-disease plan {plan_id} was changed by someone else (now version {plan.version})",
                       field="version", code="stale_version")
    changed: list[str] = []
    for name, value in changes.items():
        if name in _SEALED_FIELDS:
            value = [str(item) for item in dict.fromkeys(value)] if name == "conditions" else _plain(value)
        if getattr(plan, name) != value:
            setattr(plan, name, value)
            changed.append(name)
    if "active" in changed:
        plan.ended_on = None if plan.active else today
    if changed:
        plan.version += 1
        await session.flush()
        # Which fields changed, never their values (diagnoses, medicines).
        record(session, actor, action=PLAN_UPDATE, target_type="elder", target_id=elder_id,
               details={"plan_id": plan.id, "fields": sorted(changed)})
    return plan


async def plans(session: AsyncSession, elder_id: int) -> Sequence[ChronicPlan]:
    await get_elder(session, elder_id)
    return (await session.scalars(select(ChronicPlan).where(ChronicPlan.elder_id == elder_id).order_by(
        ChronicPlan.active.desc(), ChronicPlan.id.desc()))).all()


# --- overdue follow-up visits ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class Overdue:
    plan_id: int
    elder_id: int
    due_on: dt.date


async def find_overdue(session: AsyncSession, today: dt.date) -> list[Overdue]:
    """Active plans whose next visit was due before ``today`` (the centre's calendar) and that have no order for
    that due date yet."""
    raised = select(OverdueVisitOrder.id).where(OverdueVisitOrder.plan_id == ChronicPlan.id,
                                                OverdueVisitOrder.due_on == ChronicPlan.next_visit_due)
    rows = await session.execute(
        select(ChronicPlan.id, ChronicPlan.elder_id, ChronicPlan.next_visit_due)
        .where(ChronicPlan.active.is_(True), ChronicPlan.next_visit_due < today, ~raised.exists())
        .order_by(ChronicPlan.next_visit_due, ChronicPlan.id))
    return [Overdue(plan_id, elder_id, due_on) for plan_id, elder_id, due_on in rows.all()]


async def community_doctor(session: AsyncSession, elder_id: int) -> Contact | None:
    """The elder's community doctor: their first contact with role ``doctor``."""
    return await session.scalar(select(Contact).where(Contact.elder_id == elder_id,
                                                      Contact.role == ContactRole.DOCTOR)
                                .order_by(Contact.priority, Contact.id).limit(1))


async def raise_overdue(session: AsyncSession, today: dt.date, *, now: dt.datetime,
                        tz: ZoneInfo) -> list[WorkOrder]:
    """A work order for the community doctor for each overdue visit that has none yet (looked up again here, in
    the writing transaction): exactly one per plan and due date, however often the scan runs. The order names
    the doctor and the due date, never the conditions."""
    orders: list[WorkOrder] = []
    for overdue in await find_overdue(session, today):
        plan = await session.get(ChronicPlan, overdue.plan_id, with_for_update=True)
        if plan is None or not plan.active or plan.next_visit_due != overdue.due_on:
            continue  # changed since it was read
        elder = await session.get(Elder, overdue.elder_id)
        doctor = await community_doctor(session, overdue.elder_id)
        who = f"社区医生{doctor.name}" if doctor is not None else "社区医生（档案中未登记，请先补录）"
        order = await raise_order(
            session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label=SYSTEM, elder_id=overdue.elder_id,
            title=OVERDUE_TITLE,
            description=f"慢病管理计划的随访应于 {overdue.due_on.isoformat()} 前完成，已逾期。请联系{who}安排随访。",
            location_text=elder.address if elder is not None else None,
            details={"plan_id": plan.id, "due_on": overdue.due_on.isoformat(),
                     "doctor_contact_id": doctor.id if doctor is not None else None,
                     "doctor": doctor.name if doctor is not None else None},
            now=now, tz=tz)
        session.add(OverdueVisitOrder(plan_id=plan.id, due_on=overdue.due_on, work_order_id=order.id,
                                      raised_at=now))
        record(session, SYSTEM_ACTOR, action=VISIT_OVERDUE, target_type="elder", target_id=overdue.elder_id,
               details={"plan_id": plan.id, "due_on": overdue.due_on.isoformat(), "work_order_id": order.id})
        orders.append(order)
    await session.flush()
    return orders
