"""SCAIP end to end through the real Asterisk: a social-alarm unit (SIPp) sends a real SS 91100 fall alarm — an
<mrq> in a SIP MESSAGE — authenticated with its device's digest; the platform gets it over the AMI, stores the alarm
with its work order, and the unit, at its registered contact, receives the <mrs> accepting it (the scenario fails
unless the body is exactly that). And Asterisk 22's limit, pinned: the same body labelled application/scaip+xml is
refused with 415 before the platform sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.alarms.models import Alarm, AlarmSource, AlarmState, AlarmType
from callcenter.calls.models import Call
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from tests import harness

REF = "SIPPFALL0001"  # tests/sipp/scaip_alarm.xml sends it, scaip_answer.xml expects it back


def _scaip_alarm(stack: harness.Stack) -> tuple[Alarm, WorkOrder] | None:
    async def fetch(db: Database) -> tuple[Alarm, WorkOrder] | None:
        async with db.transaction(read_only=True) as session:
            alarm = await session.scalar(select(Alarm).where(Alarm.source == AlarmSource.SCAIP))
            if alarm is None or alarm.work_order_id is None:
                return None
            order = await session.get(WorkOrder, alarm.work_order_id)
            return (alarm, order) if order is not None else None

    return stack.query(fetch)  # type: ignore[no-any-return]


def _count(stack: harness.Stack, model: type[Alarm] | type[Call]) -> int:
    async def count(db: Database) -> int:
        async with db.transaction(read_only=True) as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return stack.query(count)  # type: ignore[no-any-return]


@pytest.mark.every_database
def test_a_scaip_alarm_in_a_sip_message_is_stored_with_its_work_order_and_answered_with_its_mrs(
        stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    calls = _count(stack, Call)
    unit = harness.Phone(stack, seeded.device_user, seeded.device_password, sipp_dir)
    unit.register()
    unit.answer("scaip_answer", timeout=30)
    try:
        sent = harness.sipp(stack, "scaip_alarm", service=seeded.device_user, auth_user=seeded.device_user,
                            password=seeded.device_password, variables={"content_type": "text/plain"},
                            workdir=sipp_dir)
        assert sent.ok, f"the MESSAGE was not accepted: {sent.output}"
        answered = unit.wait(timeout=30)
        assert answered.ok, f"no <mrs> accepting {REF} reached the unit: {answered.output}\n{stack.platform_output()}"
    finally:
        unit.stop()

    # Committed before the answer was sent: there is nothing to wait for.
    found = _scaip_alarm(stack)
    assert found is not None, stack.platform_output()
    alarm, order = found
    assert (alarm.type, alarm.source, alarm.state) == (AlarmType.FALL, AlarmSource.SCAIP, AlarmState.NEW)
    assert (alarm.device_id, alarm.elder_id) == (seeded.device_id, seeded.elder_id)
    assert alarm.device_message_id is not None and alarm.device_message_id.endswith(f"-{REF}")
    assert order.kind is WorkOrderKind.EMERGENCY and order.elder_id == seeded.elder_id
    # The MESSAGE ran the dialplan on a channel of its own, which is no call (hide_messaging_ami_events).
    assert _count(stack, Call) == calls

    # As the centre's staff see it: the unit's codes and its position, read back through the sealed columns.
    status, detail = stack.api("GET", f"/api/v1/alarms/{alarm.id}", token=stack.token())
    assert status == 200, detail
    assert detail["work_order_id"] == order.id and detail["source"] == "scaip"
    assert detail["location"]["latitude"] == pytest.approx(59.3293)
    assert detail["payload"]["scaip"] == {"ref": REF, "cid": "4670000001", "dty": "0005", "mty": "ME",
                                          "stc": "0009", "pri": "1", "lco": "035", "crd": ["no-voice:"]}


def test_asterisk_22_refuses_a_scaip_body_labelled_application_scaip_xml(stack: harness.Stack,
                                                                         sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _count(stack, Alarm)
    refused = harness.sipp(stack, "scaip_unsupported_type", service=seeded.device_user,
                           auth_user=seeded.device_user, password=seeded.device_password,
                           variables={"content_type": "application/scaip+xml"}, workdir=sipp_dir)
    assert refused.ok, f"Asterisk no longer answers 415: drop the text/plain rule (docs): {refused.output}"
    assert _count(stack, Alarm) == before
    # Nothing in this module calls: the MESSAGEs' dialplan channels (Message/ast_msg_queue) are no calls either
    # (hide_messaging_ami_events), however late their events would have been recorded.
    assert _count(stack, Call) == 0
