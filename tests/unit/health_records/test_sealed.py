"""What is medical in the health record is sealed in the database: findings, visit notes, doctor's notes, scores,
diagnoses, targets and medicines appear nowhere in plain — not in their rows, the orders raised, nor the audit log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from callcenter.audit.services import Actor
from callcenter.db.session import Database
from callcenter.health_records import assessment, services
from callcenter.health_records.models import AssessmentReason, VisitKind
from callcenter.health_records.overdue import OverdueVisitScanner
from tests.unit.health_records.factory import answers_totalling, elder_with_doctor
from tests.unit.supervision_cases.factory import SHANGHAI

STAFF = Actor(id=None, label="agent-test")
DAY = dt.date(2026, 11, 1)
SECRETS = ("血压偏高复查", "夜间咳嗽加重", "二甲双胍缓释片", "hypertension", "copd", "glucose_fasting",
           "建议住院观察", "self_care", "dementia")
SEALED = {"health_examinations": "findings", "health_visits": "notes", "health_doctor_notes": "note",
          "capability_assessments": "scores, grounds",
          "chronic_disease_plans": "conditions, measurements, targets, medications"}


async def test_the_database_holds_no_medical_content_in_plain(db: Database) -> None:
    elder_id = await elder_with_doctor(db)
    async with db.transaction() as session:
        await services.add_examination(session, elder_id, examined_on=DAY, examiner="王医生", institution=None,
                                       findings={"systolic": 171, "summary": "血压偏高复查"}, actor=STAFF, today=DAY)
        plan = await services.create_plan(
            session, elder_id, conditions=["hypertension", "copd"], started_on=dt.date(2026, 6, 1),
            measurements=[{"measure": "glucose_fasting", "every_days": 7}], first_visit_due=None,
            targets=[{"measure": "glucose_fasting", "max": 7.0}], visit_interval_days=30,
            medications=[{"name": "二甲双胍缓释片"}], actor=STAFF)
        await services.add_visit(session, elder_id, visited_on=DAY, doctor="李医生", kind=VisitKind.PHONE,
                                 plan_id=None, notes="夜间咳嗽加重", actor=STAFF, today=DAY)
        await services.add_note(session, elder_id, written_on=DAY, doctor="李医生", note="建议住院观察",
                                actor=STAFF, today=DAY)
        await services.add_assessment(session, elder_id, assessed_on=DAY, assessor="赵评估员", second_assessor=None,
                                      reason=AssessmentReason.FIRST, items=answers_totalling(40),
                                      grounds=assessment.Grounds(dementia=True), actor=STAFF, today=DAY)
    await OverdueVisitScanner(db, tz=SHANGHAI, interval_seconds=60).run_once()  # an order about the plan
    dump: list[str] = []
    async with db.engine.connect() as connection:
        for table, columns in SEALED.items():
            for row in (await connection.execute(text(f"SELECT {columns} FROM {table}"))).all():
                assert all(str(value).startswith("cc1:") for value in row if value is not None), (table, row)
        for table in (*SEALED, "chronic_plan_overdue_orders", "work_orders", "work_order_events", "audit_log"):
            dump += [str(row) for row in (await connection.execute(text(f"SELECT * FROM {table}"))).all()]
    everything = "\n".join(dump)
    for secret in SECRETS:
        assert secret not in everything, secret
    async with db.transaction(read_only=True) as session:  # opened with the platform's own keys
        reloaded = await services.plans(session, elder_id)
        assert reloaded[0].id == plan.id and reloaded[0].conditions == ["hypertension", "copd"]
        assert reloaded[0].medications == [{"name": "二甲双胍缓释片"}]
