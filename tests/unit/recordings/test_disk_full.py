"""The recording pipeline against full disks (real tmpfs filesystems): nothing in the spool is lost while the store
or the conversion disk is full, it is stored once space returns, and audio that could never be written is flagged
on the call's work orders instead of being silently absent."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrderEvent, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.recordings.models import Recording
from callcenter.recordings.pipeline import Outcome, RecordingPipeline
from callcenter.recordings.services import MISSING_ACTION, flag_missing
from callcenter.recordings.storage import LocalRecordingStore
from tests import tmpfs
from tests.unit.recordings.audio import age, speech_like

SERIALS = [f"SOS-20260301080{index}00-17723520001{index}" for index in range(3)]


@dataclasses.dataclass
class FullRig:
    db: Database
    pipeline: RecordingPipeline
    store: LocalRecordingStore
    spool: Path
    work: Path

    def wav(self, serial: str, seconds: float = 3.0) -> Path:
        return age(speech_like(self.spool / f"{serial}.wav", seconds), 5)

    async def rows(self) -> list[Recording]:
        async with self.db.transaction() as session:
            return list((await session.scalars(select(Recording).order_by(Recording.id))).all())

    def stored(self) -> list[Path]:
        return sorted(p for p in self.store.root.rglob("*") if p.is_file() and p.name != tmpfs.FILLER)


@pytest.fixture
def rig(db: Database, tmp_path: Path) -> Iterator[FullRig]:
    """The store and the conversions' work dir each on a small filesystem of their own; the spool on the usual
    disk (what MixMonitor wrote is there)."""
    spool = tmp_path / "spool"
    spool.mkdir()
    with tmpfs.mounted(tmp_path / "store", size_kb=1024) as store_root, \
            tmpfs.mounted(tmp_path / "work", size_kb=1024) as work:
        store = LocalRecordingStore(store_root)
        pipeline = RecordingPipeline(db, store, spool, work, retention_days=92, settle_seconds=1.0,
                                     ended_wait_seconds=2, missing_quiet_seconds=0.5, max_conversions=1)
        yield FullRig(db, pipeline, store, spool, work)


async def _ended_sos(db: Database, serial: str | None, *, with_order: bool = True) -> tuple[int, int | None]:
    async with db.transaction() as session:
        linkedid = f"1772352000.{serial[-2:] if serial else '99'}"
        call = Call(linkedid=linkedid, kind=CallKind.SOS, recording_serial=serial,
                    started_at=utcnow() - dt.timedelta(minutes=1), ended_at=utcnow(),
                    disposition=Disposition.ANSWERED)
        session.add(call)
        await session.flush()
        order_id = None
        if with_order:
            order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr", call_id=call.id)
            order_id = order.id
        return call.id, order_id


async def _trail(db: Database, order_id: int) -> list[WorkOrderEvent]:
    async with db.transaction() as session:
        return list((await session.scalars(select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == order_id,
                                                                         WorkOrderEvent.action == MISSING_ACTION)
                                            )).all())


async def test_a_full_store_keeps_every_spool_file_and_stores_them_once_space_returns(rig: FullRig) -> None:
    for serial in SERIALS:
        await _ended_sos(rig.db, serial)
        rig.wav(serial)
    tmpfs.fill(rig.store.root)
    with capture_logs() as logs:
        outcomes = await rig.pipeline.scan()
    # One conversion found the store full; the others waited instead of converting in vain.
    assert sorted(outcomes.values()) == sorted([Outcome.FAILED, Outcome.WAITING, Outcome.WAITING])
    [failure] = [entry for entry in logs if entry["event"] == "recording.failed"]
    assert failure["step"] == "store" and failure["no_space"] is True and failure["log_level"] == "error"
    assert all((rig.spool / f"{serial}.wav").exists() for serial in SERIALS)
    assert await rig.rows() == [] and rig.stored() == []
    # Neither a half-written copy in the store nor the conversion in the work dir holds space for the retry.
    assert [p.name for p in rig.store.root.rglob("*") if p.is_file()] == [tmpfs.FILLER]
    assert list(rig.work.iterdir()) == []

    # Still full: one conversion is tried again, the others wait; still nothing is lost.
    assert sorted((await rig.pipeline.scan()).values()) == sorted([Outcome.FAILED, Outcome.WAITING, Outcome.WAITING])
    assert all((rig.spool / f"{serial}.wav").exists() for serial in SERIALS)
    tmpfs.free(rig.store.root)
    assert await rig.pipeline.scan() == dict.fromkeys(SERIALS, Outcome.STORED)
    assert len(await rig.rows()) == 3 and len(rig.stored()) == 3
    assert not any(rig.spool.iterdir())


async def test_a_full_conversion_disk_keeps_the_spool_file_too(rig: FullRig) -> None:
    await _ended_sos(rig.db, SERIALS[0])
    wav = rig.wav(SERIALS[0], seconds=30)
    tmpfs.fill(rig.work)
    with capture_logs() as logs:
        assert await rig.pipeline.scan() == {SERIALS[0]: Outcome.FAILED}
    [failure] = [entry for entry in logs if entry["event"] == "recording.failed"]
    assert failure["step"] == "convert" and failure["no_space"] is True
    assert wav.exists() and await rig.rows() == []
    tmpfs.free(rig.work)
    assert await rig.pipeline.scan() == {SERIALS[0]: Outcome.STORED}
    assert not wav.exists()


async def test_scan_soon_wakes_the_scanner_before_its_interval(rig: FullRig) -> None:
    rig.pipeline._scan_seconds = 3600  # only a wake-up can bring the second scan
    await _ended_sos(rig.db, SERIALS[0])
    wav = rig.wav(SERIALS[0])
    tmpfs.fill(rig.store.root)
    await rig.pipeline.start()
    try:
        async with asyncio.timeout(10):
            while not rig.pipeline._no_space:  # noqa: ASYNC110 - the first scan runs at start
                await asyncio.sleep(0.05)
        tmpfs.free(rig.store.root)
        rig.pipeline.scan_soon()
        async with asyncio.timeout(10):
            while wav.exists():  # noqa: ASYNC110 - the file is the pipeline's output
                await asyncio.sleep(0.05)
    finally:
        await rig.pipeline.stop()
    assert len(await rig.rows()) == 1


async def test_audio_that_was_never_written_is_flagged_on_the_order_not_silently_absent(rig: FullRig) -> None:
    call_id, order_id = await _ended_sos(rig.db, SERIALS[0])
    assert order_id is not None
    empty = rig.spool / f"{SERIALS[0]}.wav"
    empty.touch()  # what MixMonitor leaves on a full spool: the file, and not even its header
    age(empty, 0.1)
    assert await rig.pipeline.scan() == {SERIALS[0]: Outcome.WAITING}  # MixMonitor may still be closing it
    age(empty, 5)
    with capture_logs() as logs:
        assert await rig.pipeline.scan() == {SERIALS[0]: Outcome.MISSING}
    [line] = [entry for entry in logs if entry["event"] == "recording.missing"]
    assert (line["serial"], line["call_id"], line["work_orders"], line["size_bytes"]) == (
        SERIALS[0], call_id, [order_id], 0)
    assert line["log_level"] == "error"
    [event] = await _trail(rig.db, order_id)
    assert event.call_id == call_id and event.actor_label == "system"
    assert event.details["recording_serial"] == SERIALS[0] and "no audio" in event.details["reason"]
    assert not empty.exists() and await rig.rows() == []
    assert await rig.pipeline.scan() == {}


async def test_a_call_whose_file_never_appeared_is_flagged_once(rig: FullRig) -> None:
    call_id, order_id = await _ended_sos(rig.db, SERIALS[1])
    assert order_id is not None
    async with rig.db.transaction() as session:
        call = await session.get(Call, call_id)
    assert call is not None
    with capture_logs() as logs:
        await rig.pipeline.call_ended(call)
        await rig.pipeline.call_ended(call)  # told twice (a reconciled call): flagged once
        async with asyncio.timeout(10):
            while rig.pipeline._tasks:  # noqa: ASYNC110 - the hook's background tasks
                await asyncio.sleep(0.05)
    assert len(await _trail(rig.db, order_id)) == 1
    reasons = [entry["reason"] for entry in logs if entry["event"] == "recording.missing"]
    assert reasons and set(reasons) == {"no file written"}


async def test_a_collected_recording_is_not_flagged_missing(rig: FullRig) -> None:
    call_id, order_id = await _ended_sos(rig.db, SERIALS[2])
    assert order_id is not None
    rig.wav(SERIALS[2])
    async with rig.db.transaction() as session:
        call = await session.get(Call, call_id)
    assert call is not None
    await rig.pipeline.call_ended(call)
    async with asyncio.timeout(10):
        while rig.pipeline._tasks:  # noqa: ASYNC110 - the hook's background task
            await asyncio.sleep(0.05)
    assert len(await rig.rows()) == 1 and await _trail(rig.db, order_id) == []


async def test_two_flaggings_of_one_call_at_once_write_one_entry(db: Database) -> None:
    """The second flagging starts while the first holds its transaction open: it must wait and find the entry."""
    call_id, order_id = await _ended_sos(db, SERIALS[0])
    assert order_id is not None
    first_flagged, second_started = asyncio.Event(), asyncio.Event()

    async def first() -> list[int]:
        async with db.transaction() as session:
            orders = await flag_missing(session, call_id=call_id, serial=SERIALS[0], reason="no file written")
            first_flagged.set()
            await second_started.wait()
            # No event says "the other transaction is now blocked in the database": give it a moment to get there.
            await asyncio.sleep(0.5)
            return orders

    async def second() -> list[int]:
        await first_flagged.wait()
        second_started.set()
        async with db.transaction() as session:
            return await flag_missing(session, call_id=call_id, serial=SERIALS[0], reason="no file written")

    async with asyncio.timeout(20):
        assert await asyncio.gather(first(), second()) == [[order_id], [order_id]]
    assert len(await _trail(db, order_id)) == 1
