"""Care calls end to end on the real Asterisk with SIPp elders: check-in schedules written through the API are
planned by the platform's planner, dialled through the trunk by the outbound engine; the elder who presses 1 is
recorded "well", the one who never answers is tried again, then missed: an emergency work order for them.

This module runs a stack of its own (about 25 s more): the check-ins are care calls, which the default quiet
hours (21:00-08:00) rightly hold, and a test may run at any hour. The stack's CC_TIMEZONE is a fixed-offset zone
in which it is midday now, so the default quiet hours stay in force and simply do not apply; its calls ring 10 s
and are tried twice, one second apart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.care_calls.models import CareRecord
from callcenter.db.session import Database
from callcenter.elders.models import Elder, LivingSituation
from tests import harness
from tests.integration.conftest import ELDER_PHONE, running_stack
from tests.unit.care_calls.helpers import zone_at

SILENT = "13900000019"  # the trunk responders never answer a number ending in 9


@pytest.fixture(scope="module")
def care_stack(tmp_path_factory: pytest.TempPathFactory, built_prompts: Path) -> Iterator[harness.Stack]:
    harness.require_tools()
    data_dir = tmp_path_factory.mktemp("stack-care-calls")
    environment = {"CC_TIMEZONE": zone_at(12), "CC_OUTBOUND_RING_SECONDS": "10", "CC_CARE_CALLS_ATTEMPTS": "2",
                   "CC_CARE_CALLS_RETRY_SECONDS": "1"}
    with harness.database_url("sqlite", data_dir) as url, \
            running_stack(data_dir, url, built_prompts, environment) as stack:
        yield stack


def _silent_elder(stack: harness.Stack) -> int:
    async def run(db: Database) -> int:
        async with db.transaction() as session:
            elder = Elder(full_name="测试独居老人", phone=SILENT, living_situation=LivingSituation.ALONE)
            session.add(elder)
            await session.flush()
            return elder.id

    return stack.query(run)  # type: ignore[no-any-return]


def _records(stack: harness.Stack) -> dict[int, dict[str, Any]]:
    async def run(db: Database) -> dict[int, dict[str, Any]]:
        async with db.transaction(read_only=True) as session:
            rows = (await session.scalars(select(CareRecord))).all()
            return {r.elder_id: {"outcome": r.outcome.value, "attempts": r.attempts, "calls": r.call_ids,
                                 "order": r.work_order_id, "id": r.id} for r in rows}

    return stack.query(run)  # type: ignore[no-any-return]


def test_a_check_in_answered_with_1_is_well_and_one_never_answered_is_retried_then_escalated(
        care_stack: harness.Stack, sipp_dir: Path) -> None:
    stack = care_stack
    answering = stack.seeded.elder_id  # type: ignore[attr-defined]  # phone ends in 1: answers, presses 1
    silent = _silent_elder(stack)
    people = harness.TrunkResponders(stack, sipp_dir / "responders")
    people.answer_calls(3, listen_ms=2500, timeout=90)  # one answered, two tries unanswered
    admin = stack.token()
    for elder_id in (answering, silent):
        status, body = stack.api("POST", f"/api/v1/elders/{elder_id}/care-schedules",
                                 {"recurrence": "daily", "window_start": "09:00", "window_end": "17:00"}, token=admin)
        assert status == 201, body
    well = harness.eventually(lambda: (r := _records(stack).get(answering)) and r["outcome"] == "well" and r,
                              timeout=60, what="the check-in answered with 1")
    assert well["attempts"] == 1 and len(well["calls"]) == 1 and well["order"] is None, well
    missed = harness.eventually(lambda: (r := _records(stack).get(silent)) and r["outcome"] == "missed" and r,
                                timeout=60, what="the unanswered check-in to be missed")
    assert missed["attempts"] == 2 and len(missed["calls"]) == 2, missed
    assert people.wait(30).ok, people.errors()
    assert sorted(number for number, _ in people.invites()) == sorted(
        [ELDER_PHONE, SILENT, SILENT])

    status, order = stack.api("GET", f"/api/v1/work-orders/{missed['order']}", token=admin)
    assert status == 200, order
    assert (order["kind"], order["elder_id"], order["title"]) == ("emergency", silent, "今日关爱电话无人接听")
    status, day = stack.api("GET", "/api/v1/care-calls", token=admin)
    assert status == 200, day
    assert {(i["elder_id"], i["outcome"], i["exception"]) for i in day["items"]} == {
        (answering, "well", False), (silent, "missed", True)}
    status, call = stack.api("GET", f"/api/v1/calls/{well['calls'][0]}", token=admin)
    assert status == 200 and (call["kind"], call["purpose"]) == ("outbound", "care_call"), call
    status, unanswered = stack.api("GET", f"/api/v1/calls/{missed['calls'][-1]}", token=admin)
    assert status == 200 and unanswered["disposition"] == "no_answer", unanswered
