"""The call log's journal: durable across a restart, replayed in order, kept when a replay fails, and the call
events and SOS intakes the database could not take are stored once it answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from panoramisk.message import Message
from sqlalchemy import func, select

from callcenter.calls.events import CallEventRecorder
from callcenter.calls.journal import AMI_EVENT, SOS_INTAKE
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.calls.replay import journal_applier
from callcenter.db.session import Database
from callcenter.journal import Journal
from callcenter.orders.models import WorkOrder
from tests.harness import free_tcp_port


async def test_entries_survive_a_restart_and_are_replayed_in_order_once(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    for n in range(3):
        await journal.append(AMI_EVENT, {"n": n})
    assert journal.backlog == 3
    restarted = Journal(tmp_path / "journal")  # a new process finds them
    assert restarted.backlog == 3
    seen: list[int] = []

    async def apply(kind: str, payload: dict[str, Any]) -> None:
        assert kind == AMI_EVENT
        seen.append(payload["n"])

    assert await restarted.replay(apply) == 3
    assert seen == [0, 1, 2] and restarted.backlog == 0
    assert await Journal(tmp_path / "journal").replay(apply) == 0  # applied entries are never applied again


async def test_a_failed_replay_keeps_the_entry_for_the_next_try(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    await journal.append(AMI_EVENT, {"n": 0})
    await journal.append(AMI_EVENT, {"n": 1})
    seen: list[int] = []
    refusals = [ConnectionRefusedError("the database is still away")]  # the second entry fails once

    async def flaky(_kind: str, payload: dict[str, Any]) -> None:
        if payload["n"] == 1 and refusals:
            raise refusals.pop()
        seen.append(payload["n"])

    with pytest.raises(ConnectionRefusedError):
        await journal.replay(flaky)
    assert journal.backlog == 1 and seen == [0]
    assert await journal.replay(flaky) == 1
    assert seen == [0, 1]


async def test_a_line_torn_by_a_kill_is_dropped_and_the_next_entry_starts_clean(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    await journal.append(AMI_EVENT, {"n": 0})
    with (tmp_path / "journal" / "journal.jsonl").open("a") as handle:
        handle.write('{"kind": "ami_event", "payl')  # killed in the middle of a write
    restarted = Journal(tmp_path / "journal")
    await restarted.append(AMI_EVENT, {"n": 1})
    seen: list[int] = []

    async def apply(_kind: str, payload: dict[str, Any]) -> None:
        seen.append(payload["n"])

    await restarted.replay(apply)
    assert seen == [0, 1]


def _event(name: str, **fields: str) -> Message:
    base = {"Event": name, "Uniqueid": "1765000000.31", "Linkedid": "1765000000.31",
            "Channel": "PJSIP/dev-journal-00000001", "Timestamp": "1765000000.5"}
    return Message({**base, **fields})


async def test_events_and_an_intake_the_database_could_not_take_are_stored_once_it_answers(
        db: Database, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    away = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_tcp_port()}/callcenter")  # refused
    try:
        recorder = CallEventRecorder(away, journal)
        await recorder.handle(_event("Newchannel", CallerIDNum="17700000001", Exten="sos"))
        await journal.append(SOS_INTAKE, {"linkedid": "1765000000.31", "endpoint": "dev-journal",
                                          "caller_number": "17700000001", "serial": "SOS-1"})
        await recorder.handle(_event("QueueCallerJoin", Queue="emergency", Timestamp="1765000001.0"))
        await recorder.handle(_event("Hangup", Cause="16", Timestamp="1765000009.0"))
    finally:
        await away.dispose()
    assert journal.backlog == 4  # the first event waited its retries; the rest went straight behind it

    apply = journal_applier(db, CallEventRecorder(db))
    assert await journal.replay(apply) == 4
    assert await Journal(tmp_path / "journal").replay(apply) == 0
    async with db.transaction(read_only=True) as session:
        call = await session.scalar(select(Call).where(Call.linkedid == "1765000000.31"))
        assert call is not None
        orders = await session.scalar(select(func.count()).select_from(WorkOrder).where(WorkOrder.call_id == call.id))
    assert call.kind is CallKind.SOS and call.queue == "emergency" and call.ended_at is not None
    assert call.disposition is Disposition.ABANDONED and call.recording_serial == "SOS-1"
    assert orders == 1
