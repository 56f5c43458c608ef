"""/api/v1/elders/{id}/examinations, …/health-visits, …/doctor-notes, …/assessments, …/chronic-plans and
/api/v1/capability-assessment: an elder's health record. Read: agents, supervisors, auditors (and admins); write:
agents and supervisors (and admins), who enter what the community doctor and the assessors report. Providers'
accounts get nothing (403). Medical content is shown to agents and supervisors only; admins and auditors read
who recorded what and when, with ``masked_fields`` naming what was left out. Every read is audited with its
grounds (``elders.access``: the call or work order named, else the reader's live call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.context import DATABASE, centre_today
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.db.base import utcnow
from callcenter.elders.access import grounds_for, record_read
from callcenter.elders.schemas import ReadQuery
from callcenter.health_records import assessment, services
from callcenter.health_records.models import CapabilityAssessment, ChronicPlan, DoctorNote, Examination, Visit
from callcenter.health_records.schemas import (
    AssessmentCreate,
    AssessmentList,
    AssessmentOut,
    DoctorNoteCreate,
    DoctorNoteList,
    DoctorNoteOut,
    ExaminationCreate,
    ExaminationList,
    ExaminationOut,
    ItemOut,
    LevelOut,
    PlanCreate,
    PlanList,
    PlanOut,
    PlanPatch,
    StandardOut,
    VisitCreate,
    VisitList,
    VisitOut,
)
from callcenter.users.models import Role

routes = ApiRoutes("health_records")
READERS = (Role.AGENT, Role.SUPERVISOR, Role.AUDITOR)
WRITERS = (Role.AGENT, Role.SUPERVISOR)

_READ = ("Medical content to agents and supervisors only; admins and auditors get who recorded what and when, "
         "with `masked_fields`. Every read is audited (`health.*.read`, with `call_id` or `order_id` when given — "
         "each must exist and be about this elder, else 422 naming it — else the reader's live call with the "
         "elder).")


def _common(row: Any) -> dict[str, Any]:
    return {"id": row.id, "elder_id": row.elder_id, "recorded_by": row.recorded_by, "recorded_at": row.recorded_at}


def _masked(values: dict[str, Any], content: Sequence[str], role: Role) -> dict[str, Any]:
    if services.sees_content(role):
        return values
    return {**values, **dict.fromkeys(content), "masked_fields": list(content)}


def examination_out(row: Examination, role: Role) -> ExaminationOut:
    return ExaminationOut.model_validate(_masked({
        **_common(row), "examined_on": row.examined_on, "examiner": row.examiner, "institution": row.institution,
        "findings": row.findings}, ("findings",), role))


def visit_out(row: Visit, role: Role) -> VisitOut:
    return VisitOut.model_validate(_masked({
        **_common(row), "visited_on": row.visited_on, "doctor": row.doctor, "kind": row.kind, "plan_id": row.plan_id,
        "notes": row.notes}, ("notes",), role))


def note_out(row: DoctorNote, role: Role) -> DoctorNoteOut:
    return DoctorNoteOut.model_validate(_masked({
        **_common(row), "written_on": row.written_on, "doctor": row.doctor, "note": row.note}, ("note",), role))


_ASSESSMENT_CONTENT = ("items", "subtotals", "total", "preliminary_level", "grounds", "risk_events")


def assessment_out(row: CapabilityAssessment, role: Role, *, current: bool) -> AssessmentOut:
    scores, grounds = row.scores, row.grounds
    return AssessmentOut.model_validate(_masked({
        **_common(row), "assessed_on": row.assessed_on, "assessor": row.assessor,
        "second_assessor": row.second_assessor, "reason": row.reason, "standard": row.standard, "level": row.level,
        "current": current, "items": scores["items"], "subtotals": scores["subtotals"], "total": scores["total"],
        "preliminary_level": scores["preliminary_level"], "grounds": grounds["applied"],
        "risk_events": grounds["risk_events"]}, _ASSESSMENT_CONTENT, role))


_PLAN_CONTENT = ("conditions", "measurements", "targets", "medications")


def plan_out(row: ChronicPlan, role: Role) -> PlanOut:
    return PlanOut.model_validate(_masked({
        **_common(row), "conditions": row.conditions, "measurements": row.measurements, "targets": row.targets,
        "medications": row.medications, "visit_interval_days": row.visit_interval_days,
        "next_visit_due": row.next_visit_due, "started_on": row.started_on, "active": row.active,
        "ended_on": row.ended_on, "version": row.version}, _PLAN_CONTENT, role))


async def _audit_read(session: AsyncSession, request: ApiRequest, elder_id: int, what: str, count: int) -> None:
    query: ReadQuery = request.query
    grounds = await grounds_for(session, request.user.user_id, elder_id, call_id=query.call_id,
                                order_id=query.order_id, now=utcnow())
    record_read(session, request.actor, services.READS[what], elder_id, grounds, rows=count,
                content_shown=services.sees_content(request.user.role))


# --- the standard ----------------------------------------------------------------------------------------------

@routes.route("GET", "/capability-assessment", summary="The GB/T 42195-2022 capability assessment: its items, "
              "their scores and the levels", response=StandardOut, roles=READERS)
async def standard(_request: ApiRequest) -> StandardOut:
    floors = assessment.LEVEL_FLOORS
    return StandardOut(
        standard="GB/T 42195-2022", max_total=assessment.MAX_TOTAL,
        items=[ItemOut(code=item.code, clause=item.clause, indicator=item.indicator, scores=list(item.scores))
               for item in assessment.ITEMS],
        levels=[LevelOut(level=int(level), code=level.name.lower(), min_total=floor,
                         max_total=floors[index - 1][0] - 1 if index else assessment.MAX_TOTAL)
                for index, (floor, level) in enumerate(floors)])


# --- examinations ------------------------------------------------------------------------------------------------

@routes.route("POST", "/elders/{id}/examinations", summary="Record a physical examination", body=ExaminationCreate,
              response=ExaminationOut, status=201, roles=WRITERS)
async def create_examination(request: ApiRequest) -> ExaminationOut:
    body: ExaminationCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        row = await services.add_examination(
            session, request.params["id"], examined_on=body.examined_on, examiner=body.examiner,
            institution=body.institution, findings=body.findings.model_dump(mode="json"), actor=request.actor,
            today=centre_today(request.http.app))
        return examination_out(row, request.user.role)


@routes.route("GET", "/elders/{id}/examinations", summary="An elder's physical examinations, newest first",
              query=ReadQuery, response=ExaminationList, roles=READERS, description=_READ)
async def list_examinations(request: ApiRequest) -> ExaminationList:
    async with request.require(DATABASE).transaction() as session:
        rows = await services.examinations(session, request.params["id"])
        await _audit_read(session, request, request.params["id"], "examinations", len(rows))
        return ExaminationList(items=[examination_out(row, request.user.role) for row in rows])


# --- follow-up visits ----------------------------------------------------------------------------------------------

@routes.route("POST", "/elders/{id}/health-visits", summary="Record a doctor's follow-up visit", body=VisitCreate,
              response=VisitOut, status=201, roles=WRITERS,
              description="A visit naming a chronic-disease plan (`plan_id`, the elder's: else 422) moves the "
                          "plan's next visit to its interval after this one.")
async def create_visit(request: ApiRequest) -> VisitOut:
    body: VisitCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        row = await services.add_visit(
            session, request.params["id"], visited_on=body.visited_on, doctor=body.doctor, kind=body.kind,
            plan_id=body.plan_id, notes=body.notes, actor=request.actor, today=centre_today(request.http.app))
        return visit_out(row, request.user.role)


@routes.route("GET", "/elders/{id}/health-visits", summary="An elder's follow-up visits, newest first",
              query=ReadQuery, response=VisitList, roles=READERS, description=_READ)
async def list_visits(request: ApiRequest) -> VisitList:
    async with request.require(DATABASE).transaction() as session:
        rows = await services.visits(session, request.params["id"])
        await _audit_read(session, request, request.params["id"], "visits", len(rows))
        return VisitList(items=[visit_out(row, request.user.role) for row in rows])


# --- the doctor's notes ---------------------------------------------------------------------------------------------

@routes.route("POST", "/elders/{id}/doctor-notes", summary="Record a doctor's note", body=DoctorNoteCreate,
              response=DoctorNoteOut, status=201, roles=WRITERS)
async def create_note(request: ApiRequest) -> DoctorNoteOut:
    body: DoctorNoteCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        row = await services.add_note(session, request.params["id"], written_on=body.written_on, doctor=body.doctor,
                                      note=body.note, actor=request.actor, today=centre_today(request.http.app))
        return note_out(row, request.user.role)


@routes.route("GET", "/elders/{id}/doctor-notes", summary="An elder's doctor's notes, newest first",
              query=ReadQuery, response=DoctorNoteList, roles=READERS, description=_READ)
async def list_notes(request: ApiRequest) -> DoctorNoteList:
    async with request.require(DATABASE).transaction() as session:
        rows = await services.notes(session, request.params["id"])
        await _audit_read(session, request, request.params["id"], "notes", len(rows))
        return DoctorNoteList(items=[note_out(row, request.user.role) for row in rows])


# --- capability assessments ---------------------------------------------------------------------------------------

@routes.route("POST", "/elders/{id}/assessments", summary="Record a GB/T 42195-2022 capability assessment",
              body=AssessmentCreate, response=AssessmentOut, status=201, roles=WRITERS,
              description="The platform scores it: the subtotals of the four indicators, the total (0–90), the "
                          "preliminary level and the final one after the change grounds (coma → 完全失能; dementia, "
                          "another mental disorder, or two or more care-risk events in 30 days → one level up). "
                          "Every item is required with a score its scale allows: 422 names each bad one "
                          "(`items.<code>`). The latest assessment by date sets the elder's care level; all are "
                          "kept.")
async def create_assessment(request: ApiRequest) -> AssessmentOut:
    body: AssessmentCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        row = await services.add_assessment(
            session, request.params["id"], assessed_on=body.assessed_on, assessor=body.assessor,
            second_assessor=body.second_assessor, reason=body.reason, items=body.items.model_dump(),
            grounds=assessment.Grounds(coma=body.coma, dementia=body.dementia, mental_disorder=body.mental_disorder,
                                       risk_events=body.risk_events.counts()),
            actor=request.actor, today=centre_today(request.http.app))
        _elder, rows = await services.assessments(session, request.params["id"])
        return assessment_out(row, request.user.role, current=rows[0].id == row.id)


@routes.route("GET", "/elders/{id}/assessments", summary="An elder's capability assessments (the history), newest "
              "first, with the care level now", query=ReadQuery, response=AssessmentList, roles=READERS,
              description=_READ)
async def list_assessments(request: ApiRequest) -> AssessmentList:
    async with request.require(DATABASE).transaction() as session:
        elder, rows = await services.assessments(session, request.params["id"])
        await _audit_read(session, request, elder.id, "assessments", len(rows))
        return AssessmentList(care_level=elder.care_level, items=[
            assessment_out(row, request.user.role, current=index == 0) for index, row in enumerate(rows)])


# --- chronic-disease plans ----------------------------------------------------------------------------------------

@routes.route("POST", "/elders/{id}/chronic-plans", summary="Start a chronic-disease plan", body=PlanCreate,
              response=PlanOut, status=201, roles=WRITERS,
              description="The conditions, what to measure and how often, the targets, the medicines, and a "
                          "follow-up visit every `visit_interval_days`. A visit not recorded by its due date raises "
                          "one work order for the elder's community doctor (contact role `doctor`).")
async def create_plan(request: ApiRequest) -> PlanOut:
    body: PlanCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        plan = await services.create_plan(
            session, request.params["id"], conditions=body.conditions, measurements=body.measurements,
            targets=body.targets, medications=body.medications, visit_interval_days=body.visit_interval_days,
            started_on=body.started_on, first_visit_due=body.first_visit_due, actor=request.actor)
        return plan_out(plan, request.user.role)


@routes.route("GET", "/elders/{id}/chronic-plans", summary="An elder's chronic-disease plans, active first",
              query=ReadQuery, response=PlanList, roles=READERS, description=_READ)
async def list_plans(request: ApiRequest) -> PlanList:
    async with request.require(DATABASE).transaction() as session:
        rows = await services.plans(session, request.params["id"])
        await _audit_read(session, request, request.params["id"], "plans", len(rows))
        return PlanList(items=[plan_out(row, request.user.role) for row in rows])


@routes.route("PATCH", "/elders/{id}/chronic-plans/{plan_id}", summary="Change or end a chronic-disease plan",
              body=PlanPatch, response=PlanOut, roles=WRITERS, errors=(409,),
              description="Send the version read: a plan changed since answers 409 and keeps the other change. "
                          "`active: false` ends it (no more overdue orders).")
async def patch_plan(request: ApiRequest) -> PlanOut:
    body: PlanPatch = request.body
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    changes = {name: getattr(body, name) for name in changes}
    async with request.require(DATABASE).transaction() as session:
        plan = await services.update_plan(session, request.params["id"], request.params["plan_id"],
                                          version=body.version, changes=changes, actor=request.actor,
                                          today=centre_today(request.http.app))
        return plan_out(plan, request.user.role)
