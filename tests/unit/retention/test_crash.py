"""A retention run killed midway, then run again: it completes, and nothing is removed twice or wrongly."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from callcenter.calls.models import Call
from callcenter.recordings.models import Recording
from callcenter.recordings.storage import RecordingStore
from callcenter.retention import archive
from callcenter.retention.models import RetentionRule, RetentionStatus
from tests.unit.retention.conftest import LOCAL_ONLY
from tests.unit.retention.rig import CALL_LOG_FLOOR, NOW, RECORDING_FLOOR, SECOND, Rig


class SimulatedCrash(BaseException):  # not an Exception: the engine must not catch it, as it cannot catch SIGKILL
    """What SIGKILL does to a run: it stops right there, nothing after it runs (not even ``except Exception``)."""


@dataclasses.dataclass
class CrashingStore:
    """A real store whose ``delete`` dies at the (crash_after + 1)-th call: before, or just after, removing the
    object. ``failing`` makes every delete raise an ordinary error instead (an unreachable S3)."""

    inner: RecordingStore
    crash_after: int | None = None
    after_delete: bool = False
    failing: bool = False
    deleted: list[str] = dataclasses.field(default_factory=list)

    @property
    def backend(self) -> str:
        return self.inner.backend

    async def delete(self, key: str) -> None:
        if self.failing:
            raise ConnectionError("store unreachable")
        if self.crash_after is not None and len(self.deleted) == self.crash_after:
            if self.after_delete:
                await self.inner.delete(key)
            raise SimulatedCrash
        await self.inner.delete(key)
        self.deleted.append(key)

    async def size(self, key: str) -> int | None:
        return await self.inner.size(key)

    async def set_legal_hold(self, key: str, held: bool) -> None:
        return None



async def _expired(rig: Rig, count: int) -> list[int]:
    return [await rig.recording(created=RECORDING_FLOOR - dt.timedelta(days=n + 1)) for n in range(count)]


async def _assert_each_removed_once(rig: Rig, recordings: list[int]) -> None:
    entries = await rig.log()
    assert sorted(entry.target_id for entry in entries) == sorted(recordings)
    assert all(entry.status is RetentionStatus.DONE for entry in entries)
    for recording_id in recordings:
        assert not await rig.stored(recording_id)
        assert (await rig.get(Recording, recording_id)).deleted_at is not None


@pytest.mark.parametrize("after_delete", [False, True], ids=["before-delete", "after-delete"])
async def test_a_run_killed_in_the_store_delete_is_completed_by_the_next(rig: Rig, after_delete: bool) -> None:
    recordings = await _expired(rig, 5)
    crashing = CrashingStore(rig.store, crash_after=2, after_delete=after_delete)

    with pytest.raises(SimulatedCrash):
        await rig.engine(crashing).run(NOW)

    entries = {entry.target_id: entry.status for entry in await rig.log()}
    assert entries == {recordings[0]: RetentionStatus.DONE, recordings[1]: RetentionStatus.DONE,
                       recordings[2]: RetentionStatus.PENDING}
    assert await rig.stored(recordings[2]) is not after_delete
    assert (await rig.get(Recording, recordings[2])).deleted_at is None
    assert all([await rig.stored(recordings[3]), await rig.stored(recordings[4])])

    rerun = CrashingStore(rig.store)
    report = await rig.engine(rerun).run(NOW + SECOND)

    counts = report.rules[RetentionRule.RECORDING_EXPIRED]
    assert (report.resumed, counts.deleted, counts.failed) == (1, 3, 0)
    assert rerun.deleted == [rig.keys[r] for r in recordings[2:]]  # the first two are not deleted again
    await _assert_each_removed_once(rig, recordings)
    assert (await rig.get(Recording, recordings[0])).deleted_at == NOW
    assert (await rig.get(Recording, recordings[2])).deleted_at == NOW + SECOND


async def test_an_unreachable_store_fails_the_items_and_the_next_run_deletes_them(rig: Rig) -> None:
    recordings = await _expired(rig, 2)
    report = await rig.engine(CrashingStore(rig.store, failing=True)).run(NOW)
    counts = report.rules[RetentionRule.RECORDING_EXPIRED]
    assert (counts.deleted, counts.failed, report.failed) == (0, 2, 2)
    assert [entry.status for entry in await rig.log()] == [RetentionStatus.PENDING] * 2
    assert all([await rig.stored(recording) for recording in recordings])

    report = await rig.engine(CrashingStore(rig.store, failing=True)).run(NOW + SECOND)  # still down
    assert (report.rules[RetentionRule.RECORDING_EXPIRED].examined, report.failed) == (0, 2)  # each counted once
    assert len(await rig.log()) == 2

    report = await rig.engine().run(NOW + 2 * SECOND)
    assert (report.resumed, report.rules[RetentionRule.RECORDING_EXPIRED].deleted, report.failed) == (2, 2, 0)
    await _assert_each_removed_once(rig, recordings)


@pytest.mark.parametrize("after_delete", [False, True], ids=["audio-still-there", "audio-already-gone"])
async def test_a_hold_placed_after_a_crash_keeps_the_recording_unless_its_audio_had_gone(rig: Rig,
                                                                                        after_delete: bool) -> None:
    call = await rig.call(ended=RECORDING_FLOOR - dt.timedelta(days=2))
    recording = await rig.recording(created=RECORDING_FLOOR - dt.timedelta(days=1), call_id=call)
    with pytest.raises(SimulatedCrash):
        await rig.engine(CrashingStore(rig.store, crash_after=0, after_delete=after_delete)).run(NOW)
    await rig.hold(Call, call)

    report = await rig.engine().run(NOW + SECOND)

    counts = report.rules[RetentionRule.RECORDING_EXPIRED]
    row = await rig.get(Recording, recording)
    if not after_delete:  # the intent is withdrawn: the hold wins
        assert (counts.deleted, counts.held, report.resumed) == (0, 1, 0)
        assert await rig.stored(recording) and row.deleted_at is None
        assert await rig.log() == []
        return
    # the interrupted run had already deleted the audio: the row says so, and the log says what happened
    assert (counts.deleted, counts.held, report.resumed) == (1, 0, 1)
    assert not await rig.stored(recording) and row.deleted_at == NOW + SECOND
    [entry] = await rig.log()
    assert entry.status is RetentionStatus.DONE and entry.details["note"] == "the object was already deleted; now held"


@LOCAL_ONLY
async def test_a_run_killed_between_archive_batches_is_completed_without_archiving_a_call_twice(rig: Rig) -> None:
    calls = [await rig.call(ended=CALL_LOG_FLOOR - dt.timedelta(days=n + 1)) for n in range(5)]

    def die_after_first_batch(rule: RetentionRule, done: int, total: int) -> None:
        if rule is RetentionRule.CALL_LOG_ARCHIVE:
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        await rig.engine().run(NOW, progress=die_after_first_batch)
    assert [await rig.get(Call, call) is None for call in calls] == [True, True, True, False, False]

    report = await rig.engine().run(NOW + SECOND)

    assert report.rules[RetentionRule.CALL_LOG_ARCHIVE].archived == 2
    lines = [line for file in sorted((rig.tmp_path / "data" / "archive").glob("*.jsonl.gz"))
             for line in archive.read_archive(file)]
    assert sorted(line["call"]["id"] for line in lines) == calls  # every call in exactly one file
    assert sorted(entry.target_id for entry in await rig.log()) == calls


@LOCAL_ONLY
async def test_an_archive_that_cannot_be_written_removes_nothing_and_is_finished_by_the_next_run(rig: Rig) -> None:
    calls = [await rig.call(ended=CALL_LOG_FLOOR - dt.timedelta(days=1)) for _ in range(2)]
    blocker = rig.tmp_path / "data" / "archive"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")  # the archive directory cannot be created: the write fails

    report = await rig.engine().run(NOW)

    counts = report.rules[RetentionRule.CALL_LOG_ARCHIVE]
    assert (counts.archived, counts.failed) == (0, 2)
    assert all([await rig.get(Call, call) is not None for call in calls])
    entries = await rig.log()
    assert [entry.status for entry in entries] == [RetentionStatus.PENDING] * 2
    name = entries[0].details["archive"]

    blocker.unlink()
    report = await rig.engine().run(NOW + SECOND)

    assert (report.resumed, report.rules[RetentionRule.CALL_LOG_ARCHIVE].archived, report.failed) == (2, 2, 0)
    assert [file.path.name for file in report.archives] == [name]  # the name the intent gave it
    assert sorted(line["call"]["id"] for line in archive.read_archive(blocker / name)) == calls
    assert all([await rig.get(Call, call) is None for call in calls])
    assert [entry.status for entry in await rig.log()] == [RetentionStatus.DONE] * 2
