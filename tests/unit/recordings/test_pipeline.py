"""The recording pipeline against real WAVs, a real store and a real database: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from pydub import AudioSegment
from sqlalchemy import func, select
from structlog.testing import capture_logs

from callcenter.calls.models import Call, Disposition
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.recordings import pipeline as pipeline_module
from callcenter.recordings.models import Recording
from callcenter.recordings.pipeline import Outcome, RecordingPipeline
from callcenter.recordings.storage import LocalRecordingStore, file_sha256
from tests.unit.recordings.audio import age, speech, speech_like

SERIAL = "SOS-20260301080000-1772352000123"
LINKEDID = "1772352000.123"


@dataclasses.dataclass
class Rig:
    db: Database
    pipeline: RecordingPipeline
    store: LocalRecordingStore
    spool: Path

    def wav(self, seconds: float = 3.0, serial: str = SERIAL, *, written_ago: float = 5.0) -> Path:
        return age(speech_like(self.spool / f"{serial}.wav", seconds), written_ago)

    async def rows(self) -> list[Recording]:
        async with self.db.transaction() as session:
            return list((await session.scalars(select(Recording).order_by(Recording.id))).all())

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.store.root.rglob("*") if p.is_file()) if self.store.root.exists() else []


@pytest.fixture
def rig(db: Database, tmp_path: Path) -> Rig:
    store = LocalRecordingStore(tmp_path / "recordings")
    spool = tmp_path / "spool"
    spool.mkdir()
    pipeline = RecordingPipeline(db, store, spool, tmp_path / "work", retention_days=92, settle_seconds=1.0,
                                 orphan_quiet_seconds=600, ended_wait_seconds=10)
    return Rig(db, pipeline, store, spool)


async def _call(db: Database, *, serial: str | None = SERIAL, linkedid: str = LINKEDID, ended: bool = True) -> Call:
    async with db.transaction() as session:
        started = utcnow() - dt.timedelta(minutes=2)
        call = Call(linkedid=linkedid, recording_serial=serial, started_at=started,
                    ended_at=utcnow() if ended else None,
                    disposition=Disposition.ANSWERED if ended else Disposition.IN_PROGRESS)
        session.add(call)
        await session.flush()
        return call


async def _eventually(probe: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_finished_call_is_measured_compressed_stored_registered_then_removed(rig: Rig,
                                                                                      tmp_path: Path) -> None:
    call = await _call(rig.db)
    wav = age(speech(rig.spool / f"{SERIAL}.wav", 60, tmp_path / "espeak"), 5)

    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}

    [row] = await rig.rows()
    stored = rig.store.root / "2026/03/01" / f"{SERIAL}.ogg"  # the date the serial was recorded
    assert rig.stored_files() == [stored]
    assert not wav.exists()
    assert (row.serial_number, row.call_id, row.storage_backend, row.audio_format) == (
        SERIAL, call.id, "local", "ogg/opus")
    assert row.storage_key == f"2026/03/01/{SERIAL}.ogg"
    assert row.duration_seconds == pytest.approx(60, abs=0.2)
    assert row.sha256 == file_sha256(stored)
    assert row.size_bytes == stored.stat().st_size <= 120 * 1024  # per minute
    assert row.expires_at - row.created_at == dt.timedelta(days=92)
    assert abs(row.created_at - utcnow()) < dt.timedelta(minutes=1)
    assert AudioSegment.from_file(stored, format="ogg").duration_seconds == pytest.approx(60, abs=0.2)
    assert not any((tmp_path / "work").iterdir())
    # Rescans find nothing left to do and change nothing.
    assert await rig.pipeline.scan() == {}
    assert [r.sha256 for r in await rig.rows()] == [row.sha256]


async def test_a_file_still_being_written_or_of_a_live_call_is_not_taken(rig: Rig) -> None:
    await _call(rig.db, ended=False)
    wav = rig.wav(written_ago=0)  # just written to
    assert await rig.pipeline.scan() == {SERIAL: Outcome.WAITING}
    age(wav, 30)  # quiet, but the call is still in progress
    assert await rig.pipeline.scan() == {SERIAL: Outcome.WAITING}
    # A call never seen to end (platform or Asterisk down at the hangup) is taken once its file is long quiet.
    age(wav, 601)
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    assert len(await rig.rows()) == 1


async def test_a_file_without_a_known_call_waits_for_quiet_then_is_kept_unlinked(rig: Rig) -> None:
    wav = rig.wav(serial="SOS-20260301090000-1772355600001", written_ago=30)
    assert await rig.pipeline.scan() == {wav.stem: Outcome.WAITING}
    age(wav, 601)
    assert await rig.pipeline.scan() == {wav.stem: Outcome.STORED}
    [row] = await rig.rows()
    assert row.call_id is None and row.serial_number == wav.stem


async def test_a_callback_recording_is_linked_by_the_linkedid_in_its_serial(rig: Rig) -> None:
    call = await _call(rig.db, serial=None, linkedid="1772352000.45")
    rig.wav(serial="CB-20260301080000-177235200045")
    assert await rig.pipeline.scan() == {"CB-20260301080000-177235200045": Outcome.STORED}
    [row] = await rig.rows()
    assert row.call_id == call.id


async def test_a_file_that_grows_during_conversion_is_not_registered(rig: Rig,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    await _call(rig.db)
    wav = rig.wav()
    real = pipeline_module.transcode

    def transcode_while_mixmonitor_writes(source: Path, target: Path) -> float:
        duration = real(source, target)
        with source.open("ab") as more:
            more.write(b"\0" * 3200)
        return duration

    monkeypatch.setattr(pipeline_module, "transcode", transcode_while_mixmonitor_writes)
    assert await rig.pipeline.scan() == {SERIAL: Outcome.WAITING}
    assert wav.exists() and await rig.rows() == []


async def test_a_corrupt_file_stays_logged_and_is_retried_until_it_succeeds(rig: Rig) -> None:
    await _call(rig.db)
    wav = rig.spool / f"{SERIAL}.wav"
    wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 40)
    age(wav, 5)
    with capture_logs() as logs:
        assert await rig.pipeline.scan() == {SERIAL: Outcome.FAILED}
        assert await rig.pipeline.scan() == {SERIAL: Outcome.FAILED}  # retried, and still there
    failures = [entry for entry in logs if entry["event"] == "recording.failed"]
    assert len(failures) == 2
    assert failures[0]["serial"] == SERIAL and failures[0]["linkedid"] == LINKEDID
    assert failures[0]["step"] == "convert" and "cannot decode" in failures[0]["error"]
    assert wav.exists() and await rig.rows() == [] and rig.stored_files() == []
    rig.wav()  # repaired (say, by hand from a backup)
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    assert len(await rig.rows()) == 1 and not wav.exists()


async def test_an_empty_recording_is_registered_with_no_duration(rig: Rig) -> None:
    await _call(rig.db)
    with wave.open(str(rig.spool / f"{SERIAL}.wav"), "wb") as empty:  # the header MixMonitor writes first
        empty.setnchannels(1)
        empty.setsampwidth(2)
        empty.setframerate(8000)
    age(rig.spool / f"{SERIAL}.wav", 5)
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    [row] = await rig.rows()
    assert row.duration_seconds == 0 and row.size_bytes


async def test_a_crash_between_storing_and_registering_is_finished_by_the_rerun(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await _call(rig.db)
    wav = rig.wav()

    async def crash(_stored: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(rig.pipeline, "_register", crash)
    assert await rig.pipeline.scan() == {SERIAL: Outcome.FAILED}
    assert wav.exists() and await rig.rows() == [] and len(rig.stored_files()) == 1
    monkeypatch.undo()
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    [row] = await rig.rows()
    assert rig.stored_files() == [rig.store.root / row.storage_key]
    assert row.sha256 == file_sha256(rig.store.root / row.storage_key)
    assert not wav.exists()


async def test_a_crash_after_registering_only_removes_the_spool_file_on_rerun(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await _call(rig.db)
    wav = rig.wav()

    async def crash(_path: Path, _state: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(rig.pipeline, "_remove_spool_file", crash)
    assert await rig.pipeline.scan() == {SERIAL: Outcome.FAILED}
    [before] = await rig.rows()
    monkeypatch.undo()
    assert await rig.pipeline.scan() == {SERIAL: Outcome.CLEANED}
    [after] = await rig.rows()
    assert (after.id, after.sha256, after.created_at) == (before.id, before.sha256, before.created_at)
    assert not wav.exists() and len(rig.stored_files()) == 1


async def test_a_registered_recording_whose_object_is_missing_is_stored_again(rig: Rig) -> None:
    await _call(rig.db)
    wav = rig.wav()
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    [row] = await rig.rows()
    # The spool WAV is back (restored from a backup) and the stored object is gone.
    rig.wav()
    (rig.store.root / row.storage_key).unlink()
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    [repaired] = await rig.rows()
    assert repaired.id == row.id and (rig.store.root / row.storage_key).exists() and not wav.exists()


async def test_the_hook_and_the_scan_never_register_twice(rig: Rig) -> None:
    call = await _call(rig.db)
    rig.wav()
    await asyncio.gather(rig.pipeline.call_ended(call), rig.pipeline.scan(), rig.pipeline.scan())
    await _eventually(lambda: not (rig.spool / f"{SERIAL}.wav").exists())  # the hook's task may finish last
    await rig.pipeline.stop()
    assert len(await rig.rows()) == 1 and len(rig.stored_files()) == 1
    assert await rig.pipeline.scan() == {}


async def test_the_call_ended_hook_waits_for_mixmonitor_to_close_the_file(rig: Rig) -> None:
    call = await _call(rig.db)
    rig.pipeline._settle = 0.3
    wav = rig.wav(written_ago=0)
    await rig.pipeline.call_ended(call)
    assert wav.exists()  # not taken while fresh
    await _eventually(lambda: not wav.exists())
    assert len(await rig.rows()) == 1


async def test_start_scans_at_once_and_files_that_are_not_recordings_are_left_alone(rig: Rig) -> None:
    await _call(rig.db)
    stray = rig.spool / ".hidden junk.wav"
    stray.write_bytes(b"x")
    rig.wav()
    await rig.pipeline.start()
    try:
        await _eventually(lambda: not (rig.spool / f"{SERIAL}.wav").exists())
    finally:
        await rig.pipeline.stop()
    assert len(await rig.rows()) == 1 and stray.exists()
    async with rig.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Recording)) == 1
