"""The retention engine on real databases and a real store, the clock passed in: floors, holds, orders, archive."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.calls.models import Call, CallLeg
from callcenter.conferences.models import ConferenceParticipant
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from callcenter.plugins import metadata as plugin_metadata
from callcenter.recordings.backends import RecordingStores
from callcenter.recordings.models import Recording
from callcenter.recordings.s3 import LEGAL_HOLD
from callcenter.retention import archive
from callcenter.retention.engine import RetentionBusy, RetentionPolicy, run_lock
from callcenter.retention.models import RetentionLogEntry, RetentionRule, RetentionStatus
from tests.s3server import MotoServer
from tests.unit.retention.conftest import LOCAL_ONLY, s3_store
from tests.unit.retention.rig import CALL_LOG_FLOOR, NOW, RECORDING_FLOOR, SECOND, Rig

metadata = plugin_metadata()


async def test_recordings_just_past_their_floor_lose_their_audio_and_keep_their_row(rig: Rig) -> None:
    call = await rig.call(ended=RECORDING_FLOOR - dt.timedelta(minutes=1))
    expired = await rig.recording(created=RECORDING_FLOOR - SECOND, call_id=call)  # expires 1 s ago
    # expires_at says it is due, but it is a second short of the floor: kept (defence in depth)
    early = await rig.recording(created=RECORDING_FLOOR + SECOND, expires=NOW - dt.timedelta(hours=1))
    not_yet = await rig.recording(created=RECORDING_FLOOR + SECOND)  # expires in a second
    longer = await rig.recording(created=NOW - dt.timedelta(days=100), expires=NOW - SECOND)

    report = await rig.engine(recording_days=120).run(NOW)  # the floor is the configured retention
    counts = report.rules[RetentionRule.RECORDING_EXPIRED]
    assert (counts.examined, counts.deleted, counts.kept) == (3, 0, 3)
    assert counts.kept_because == {"younger than the 120-day floor": 3}

    report = await rig.engine().run(NOW)

    counts = report.rules[RetentionRule.RECORDING_EXPIRED]
    assert (counts.examined, counts.deleted, counts.held, counts.kept, counts.failed) == (3, 2, 0, 1, 0)
    assert counts.kept_because == {"younger than the 92-day floor": 1}
    row = await rig.get(Recording, expired)
    assert row.deleted_at == NOW and row.call_id == call  # the row stays: the call log shows it existed
    assert not await rig.stored(expired) and not await rig.stored(longer)
    assert await rig.stored(early) and await rig.stored(not_yet)
    entry = next(entry for entry in await rig.log() if entry.target_id == expired)
    assert (entry.rule, entry.target_type, entry.status, entry.finished_at) == (
        RetentionRule.RECORDING_EXPIRED, "recording", RetentionStatus.DONE, NOW)
    assert entry.details["serial_number"] == row.serial_number and entry.details["backend"] == rig.store.backend
    assert entry.details["storage_key"] == row.storage_key

    report = await rig.engine().run(NOW + 2 * SECOND)
    assert report.rules[RetentionRule.RECORDING_EXPIRED].deleted == 2
    assert not await rig.stored(early) and not await rig.stored(not_yet)
    assert sorted(entry.target_id for entry in await rig.log()) == sorted([expired, early, not_yet, longer])


@LOCAL_ONLY
async def test_each_recording_loses_its_audio_in_the_store_of_its_own_backend(rig: Rig, moto_server: MotoServer,
                                                                             tmp_path: Path) -> None:
    on_s3 = Rig(rig.db, s3_store(moto_server), tmp_path)
    local = await rig.recording(created=RECORDING_FLOOR - SECOND)
    remote = await on_s3.recording(created=RECORDING_FLOOR - SECOND)

    report = await rig.engine(rig.store).run(NOW)  # S3 is not configured here: its recording cannot go yet

    counts = report.rules[RetentionRule.RECORDING_EXPIRED]
    assert (counts.deleted, counts.failed) == (1, 1)
    assert not await rig.stored(local) and await on_s3.stored(remote)
    assert (await rig.get(Recording, remote)).deleted_at is None
    assert [entry.target_id for entry in await rig.log()] == [local]  # no intent without a store to act on

    report = await rig.engine(RecordingStores(rig.store, on_s3.store)).run(NOW + SECOND)

    assert report.rules[RetentionRule.RECORDING_EXPIRED].deleted == 1 and report.failed == 0
    assert not await on_s3.stored(remote) and (await rig.get(Recording, remote)).deleted_at == NOW + SECOND
    assert [entry.details["backend"] for entry in await rig.log()] == ["local", "s3"]


@LOCAL_ONLY
@pytest.mark.parametrize("expiry", ["archive", "purge"])
async def test_call_logs_just_past_their_floor_are_archived_or_purged(rig: Rig, expiry: str) -> None:
    rig.expiry = expiry
    old = await rig.call(ended=CALL_LOG_FLOOR - SECOND, party=True)
    old_recording = await rig.recording(created=CALL_LOG_FLOOR, call_id=old, deleted=True)
    young = await rig.call(ended=CALL_LOG_FLOOR + SECOND, minutes=30)  # started before the floor, ended after
    recent = await rig.call(ended=NOW - dt.timedelta(days=30))

    report = await rig.engine().run(NOW)

    rule = RetentionRule.CALL_LOG_ARCHIVE if expiry == "archive" else RetentionRule.CALL_LOG_PURGE
    counts = report.rules[rule]
    assert (counts.examined, counts.archived + counts.deleted, counts.kept) == (2, 1, 1)
    assert (counts.archived, counts.deleted) == ((1, 0) if expiry == "archive" else (0, 1))
    assert counts.kept_because == {"younger than the 1095-day floor": 1}
    assert await rig.get(Call, old) is None
    assert await rig.count(CallLeg, CallLeg.call_id == old) == 0
    assert await rig.count(ConferenceParticipant) == 0
    assert await rig.count(Recording, Recording.id == old_recording) == 0
    assert await rig.get(Call, young) is not None and await rig.get(Call, recent) is not None
    [entry] = await rig.log()
    assert (entry.rule, entry.target_type, entry.target_id, entry.status) == (rule, "call", old, RetentionStatus.DONE)
    assert entry.details["linkedid"].endswith(".1") and len(entry.details["recordings"]) == 1
    assert "17700000501" not in str(entry.details)  # the log outlives the call log: no phone numbers in it
    files = sorted((rig.tmp_path / "data" / "archive").glob("*.jsonl.gz"))
    if expiry == "purge":
        assert files == [] and report.archives == []
        return
    [file] = files
    assert report.archives[0].path == file and report.archives[0].calls == 1
    checksum = archive.sidecar(file).read_text()
    assert checksum == f"{hashlib.sha256(file.read_bytes()).hexdigest()}  {file.name}\n"
    assert entry.details["archive"] == file.name and entry.details["archive_sha256"] == checksum.split()[0]
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    [line] = archive.read_archive(file)
    assert line["call"]["id"] == old and line["call"]["caller_number"] == "17700000501"
    assert len(line["legs"]) == 2 and line["conference_participants"][0]["role"] == "doctor"
    assert line["recordings"][0]["id"] == old_recording and line["recordings"][0]["deleted_at"]


@LOCAL_ONLY
async def test_orders_keep_their_trail_and_an_open_order_keeps_its_call(rig: Rig) -> None:
    ended = CALL_LOG_FLOOR - dt.timedelta(days=10)
    closed_call, follow_up, open_call, stored_call = [await rig.call(ended=ended) for _ in range(4)]
    closed = await rig.order(call_id=closed_call, mentions=(follow_up,))
    await rig.order(call_id=open_call, status=WorkOrderStatus.FOLLOW_UP)
    await rig.recording(created=ended, call_id=stored_call, days=2000)  # a longer recording retention

    report = await rig.engine().run(NOW)

    counts = report.rules[RetentionRule.CALL_LOG_ARCHIVE]
    assert (counts.archived, counts.kept) == (2, 2)
    assert counts.kept_because == {"referred to by an open work order": 1, "a recording's audio is still stored": 1}
    assert await rig.get(Call, closed_call) is None and await rig.get(Call, follow_up) is None
    assert await rig.get(Call, open_call) is not None and await rig.get(Call, stored_call) is not None
    order = await rig.get(WorkOrder, closed)
    assert order.call_id is None and order.status is WorkOrderStatus.CLOSED
    async with rig.db.transaction() as session:
        trail = (await session.scalars(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == closed)
                                       .order_by(WorkOrderEvent.id))).all()
    assert [event.action for event in trail] == [
        "created", "follow_up_call", "call_log_archive", "call_log_archive"]
    assert all(event.call_id is None for event in trail)
    assert {event.details["call_id"] for event in trail[2:]} == {closed_call, follow_up}
    assert trail[2].actor_label == "retention" and trail[2].details["archive"].endswith(".jsonl.gz")
    [line] = [line for file in report.archives for line in archive.read_archive(file.path)
              if line["call"]["id"] == closed_call]
    assert line["work_orders"] == [{"id": closed, "number": order.number, "kind": "emergency", "status": "closed"}]


async def test_legal_holds_on_a_call_an_order_a_complaint_and_a_recording_protect_audio_and_logs(rig: Rig) -> None:
    ended = CALL_LOG_FLOOR - dt.timedelta(days=1)
    held_call, order_call, complaint_call, free_call = [await rig.call(ended=ended) for _ in range(4)]
    created = RECORDING_FLOOR - dt.timedelta(days=1)
    audio = {call: await rig.recording(created=created, call_id=call)
             for call in (held_call, order_call, complaint_call, free_call)}
    own_hold = await rig.recording(created=created, held=True)
    await rig.hold(Call, held_call)
    order = await rig.order(call_id=order_call)
    await rig.hold(WorkOrder, order)
    complaint = await rig.order(call_id=None, kind=WorkOrderKind.COMPLAINT, mentions=(complaint_call,))
    await rig.hold(WorkOrder, complaint)

    report = await rig.engine().run(NOW)

    recordings = report.rules[RetentionRule.RECORDING_EXPIRED]
    logs = report.rules[RetentionRule.CALL_LOG_ARCHIVE]
    assert (recordings.deleted, recordings.held) == (1, 4)
    assert (logs.archived, logs.held) == (1, 3)
    assert not await rig.stored(audio[free_call])
    for call in (held_call, order_call, complaint_call):
        assert await rig.stored(audio[call]) and await rig.get(Call, call) is not None
    assert await rig.stored(own_hold)
    if rig.s3 is not None:  # S3's lifecycle rule would expire them on its own: the run took them out of it
        held = [audio[held_call], audio[order_call], audio[complaint_call], own_hold]
        assert [await rig.tag(recording) for recording in held] == [LEGAL_HOLD] * 4

    await rig.hold(Call, held_call, held=False)
    await rig.hold(WorkOrder, complaint, held=False)
    report = await rig.engine().run(NOW + SECOND)
    assert report.rules[RetentionRule.RECORDING_EXPIRED].deleted == 2
    assert report.rules[RetentionRule.CALL_LOG_ARCHIVE].archived == 2
    assert await rig.get(Call, held_call) is None and await rig.get(Call, complaint_call) is None
    assert await rig.get(Call, order_call) is not None and await rig.stored(audio[order_call])


@LOCAL_ONLY
async def test_a_dry_run_changes_nothing_and_counts_what_a_run_does(rig: Rig) -> None:
    ended = CALL_LOG_FLOOR - dt.timedelta(days=1)
    calls = [await rig.call(ended=ended) for _ in range(4)]
    for call in calls[:2]:
        await rig.recording(created=RECORDING_FLOOR - SECOND, call_id=call)
    await rig.hold(Call, calls[0])
    await rig.order(call_id=calls[3], status=WorkOrderStatus.OPEN)
    before = await _snapshot(rig)

    dry = await rig.engine().run(NOW, dry_run=True)

    assert await _snapshot(rig) == before
    assert not (rig.tmp_path / "data" / "archive").exists()
    real = await rig.engine().run(NOW)
    assert dry.dry_run and not real.dry_run
    assert dry.summary() == real.summary()
    assert real.rules[RetentionRule.CALL_LOG_ARCHIVE].archived == 2  # the unheld call with audio: after its audio


async def _snapshot(rig: Rig) -> tuple[object, ...]:
    async with rig.db.transaction() as session:
        tables = []
        for table in metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            tables.append((table.name, sorted(map(repr, rows))))
    files = sorted((str(path), path.read_bytes()) for path in rig.tmp_path.rglob("*") if path.is_file())
    return tuple(tables), tuple(files)


@LOCAL_ONLY
async def test_a_second_run_at_the_same_time_is_refused(rig: Rig) -> None:
    with run_lock(rig.policy().lock_file), pytest.raises(RetentionBusy):
        await rig.engine().run(NOW)
    await rig.engine().run(NOW, dry_run=True)  # a dry run only reads: it may look while a run works


def test_the_policy_refuses_days_under_the_floors(tmp_path: Path) -> None:
    base = {"archive_dir": tmp_path, "lock_file": tmp_path / "lock", "call_log_expiry": "purge"}
    with pytest.raises(ValueError, match="92"):
        RetentionPolicy(recording_days=91, call_log_days=1095, **base)
    with pytest.raises(ValueError, match="1095"):
        RetentionPolicy(recording_days=92, call_log_days=1094, **base)
    with pytest.raises(ValueError, match="archive or purge"):
        RetentionPolicy(recording_days=92, call_log_days=1095, **{**base, "call_log_expiry": "shred"})


def test_every_table_that_refers_to_calls_is_part_of_the_call_log_or_an_order() -> None:
    """A new table pointing at calls must be handled by retention before its foreign key can be honoured."""
    referring = {fk.parent.table.name: fk.ondelete for table in metadata.tables.values()
                 for fk in table.foreign_keys if fk.column.table.name == "calls"}
    # Removed or unlinked by the engine itself (an order's trail keeps what the call was).
    handled = {"call_legs", "conference_participants", "recordings", "work_orders", "work_order_events"}
    assert handled <= set(referring)
    # Any other table may refer to a call only as a link the database drops with it: the outbound engine's attempts
    # and the cascades' calls keep their own record (the key pressed, its time) and the order's trail says the rest.
    assert {name: rule for name, rule in referring.items() if name not in handled} == {
        "outbound_attempts": "SET NULL", "cascade_calls": "SET NULL"}
    assert RetentionLogEntry.__table__.foreign_keys == set()  # the log outlives what it describes
