"""A medication reminder end to end on the real Asterisk with a SIPp elder: written through the API at this
minute of the centre's day, made by the platform's planner, dialled through the trunk by the outbound engine, the
elder presses 1 (RFC 2833) and the reminder log says acknowledged.

This module runs a stack of its own: reminders are held by the default quiet hours (21:00-08:00) and a test may
run at any hour, so the stack's CC_TIMEZONE is a fixed-offset zone in which it is midday now (as the care calls'
test does); its planner looks every second."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.db.session import Database
from callcenter.reminders.models import ReminderLog
from tests import harness
from tests.integration.conftest import ELDER_PHONE, running_stack
from tests.unit.care_calls.helpers import zone_at
from tests.unit.reminders.helpers import local_now


@pytest.fixture(scope="module")
def reminder_stack(tmp_path_factory: pytest.TempPathFactory, built_prompts: Path) -> Iterator[harness.Stack]:
    harness.require_tools()
    data_dir = tmp_path_factory.mktemp("stack-reminders")
    environment = {"CC_TIMEZONE": zone_at(12), "CC_OUTBOUND_RING_SECONDS": "10", "CC_REMINDERS_PLAN_SECONDS": "1"}
    with harness.database_url("sqlite", data_dir) as url, \
            running_stack(data_dir, url, built_prompts, environment) as stack:
        yield stack


def _log(stack: harness.Stack) -> list[dict[str, Any]]:
    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.transaction(read_only=True) as session:
            rows = (await session.scalars(select(ReminderLog))).all()
            return [{"elder_id": r.elder_id, "outcome": r.outcome.value, "digit": r.digit, "calls": r.call_ids}
                    for r in rows]

    return stack.query(run)  # type: ignore[no-any-return]


def test_a_medication_reminder_answered_with_1_is_acknowledged(reminder_stack: harness.Stack,
                                                               sipp_dir: Path) -> None:
    stack = reminder_stack
    elder_id = stack.seeded.elder_id  # type: ignore[attr-defined]  # phone ends in 1: answers, presses 1
    people = harness.TrunkResponders(stack, sipp_dir / "responders")
    people.answer_calls(1, listen_ms=2500, timeout=60)
    admin = stack.token()
    now = local_now(stack.settings.timezone).strftime("%H:%M")
    status, body = stack.api("POST", f"/api/v1/elders/{elder_id}/medication-reminders",
                             {"medication": "氨氯地平片", "times": [now]}, token=admin)
    assert status == 201, body
    [acknowledged] = harness.eventually(
        lambda: (rows := _log(stack)) and rows[0]["outcome"] == "acknowledged" and rows,
        timeout=60, what="the reminder acknowledged with 1")
    assert (acknowledged["elder_id"], acknowledged["digit"], len(acknowledged["calls"])) == (elder_id, "1", 1)
    assert people.wait(30).ok, people.errors()
    assert [number for number, _ in people.invites()] == [ELDER_PHONE]
    status, call = stack.api("GET", f"/api/v1/calls/{acknowledged['calls'][0]}", token=admin)
    assert status == 200 and (call["kind"], call["purpose"]) == ("outbound", "reminder"), call
