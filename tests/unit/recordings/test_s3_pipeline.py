"""The recording pipeline storing into S3 (a moto server process): while S3 is down nothing is lost or deleted,
and the spool WAV goes only once the object read back from S3 has the SHA-256 that was uploaded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

from sqlalchemy import select
from structlog.testing import capture_logs

from callcenter.calls.models import Call, Disposition
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.recordings.models import Recording
from callcenter.recordings.pipeline import Outcome, RecordingPipeline
from callcenter.recordings.s3 import S3RecordingStore
from callcenter.recordings.storage import StoredObject
from tests.s3server import MotoServer, bucket_name
from tests.unit.recordings.audio import age, speech_like

SERIAL = "SOS-20260301080000-1772352000123"
KEY = f"2026/03/01/{SERIAL}.ogg"


class WatchedStore(S3RecordingStore):
    """The real S3 store, noting what the spool and the database hold at the moment S3 is read back."""

    def __init__(self, *args: object, wav: Path, db: Database, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.wav = wav
        self.db = db
        self.read_backs: list[tuple[bool, int]] = []  # (WAV still in the spool, recording rows)
        self.corrupt_next_put = False

    async def put(self, key: str, source: Path) -> StoredObject:
        stored = await super().put(key, source)
        if self.corrupt_next_put:  # the object changes on the server after the upload (bit rot, a bad proxy…)
            self.corrupt_next_put = False
            client = self._client
            client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=b"not what was uploaded")
        return stored

    async def digest(self, key: str) -> str:
        async with self.db.transaction() as session:
            rows = len((await session.scalars(select(Recording))).all())
        self.read_backs.append((self.wav.exists(), rows))
        return await super().digest(key)


@dataclasses.dataclass
class Rig:
    db: Database
    server: MotoServer
    bucket: str
    store: WatchedStore
    pipeline: RecordingPipeline
    wav: Path

    async def rows(self) -> list[Recording]:
        async with self.db.transaction() as session:
            return list((await session.scalars(select(Recording))).all())


async def _rig(db: Database, server: MotoServer, tmp_path: Path) -> Rig:
    spool = tmp_path / "spool"
    wav = age(speech_like(spool / f"{SERIAL}.wav", 3.0), 5)
    bucket = bucket_name()
    store = WatchedStore(bucket, prefix="recordings/", region="eu-central-1", endpoint_url=server.endpoint_url,
                         retention_days=92, session=server.session(), put_attempts=2, retry_seconds=0.05,
                         wav=wav, db=db)
    await store.prepare()
    async with db.transaction() as session:
        session.add(Call(linkedid="1772352000.123", recording_serial=SERIAL, disposition=Disposition.ANSWERED,
                         started_at=utcnow() - dt.timedelta(minutes=2), ended_at=utcnow()))
    pipeline = RecordingPipeline(db, store, spool, tmp_path / "work", retention_days=92, settle_seconds=1.0)
    return Rig(db, server, bucket, store, pipeline, wav)


async def test_while_s3_is_down_the_recording_stays_in_the_spool_and_is_uploaded_when_it_returns(
        db: Database, private_moto_server: MotoServer, tmp_path: Path) -> None:
    rig = await _rig(db, private_moto_server, tmp_path)
    wav_bytes = rig.wav.read_bytes()
    rig.server.stop()
    with capture_logs() as logs:
        assert await rig.pipeline.scan() == {SERIAL: Outcome.FAILED}
        assert await rig.pipeline.scan() == {SERIAL: Outcome.FAILED}  # every scan tries again
    failures = [entry for entry in logs if entry["event"] == "recording.failed"]
    assert [f["step"] for f in failures] == ["store", "store"] and failures[0]["serial"] == SERIAL
    assert [entry["attempt"] for entry in logs if entry["event"] == "recording.s3_put_retry"] == [1, 1]
    assert rig.wav.read_bytes() == wav_bytes  # untouched
    assert await rig.rows() == [] and rig.store.read_backs == []

    rig.server.start()
    await rig.store.prepare()  # the restarted server is empty: the platform's start-up preparation again
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    [row] = await rig.rows()
    # Read back once, while the WAV was still in the spool and before the row existed.
    assert rig.store.read_backs == [(True, 0)]
    assert not rig.wav.exists()
    body = rig.server.client().get_object(Bucket=rig.bucket, Key=f"recordings/{KEY}")
    assert body["ServerSideEncryption"] == "AES256"
    assert (row.storage_backend, row.storage_key) == ("s3", KEY)
    assert row.sha256 == hashlib.sha256(body["Body"].read()).hexdigest()
    assert row.size_bytes == body["ContentLength"]


async def test_an_object_that_does_not_read_back_as_uploaded_is_not_registered_and_the_wav_stays(
        db: Database, private_moto_server: MotoServer, tmp_path: Path) -> None:
    rig = await _rig(db, private_moto_server, tmp_path)
    rig.store.corrupt_next_put = True
    with capture_logs() as logs:
        assert await rig.pipeline.scan() == {SERIAL: Outcome.FAILED}
    [failure] = [entry for entry in logs if entry["event"] == "recording.failed"]
    assert failure["step"] == "verify" and "does not read back as written" in failure["error"]
    assert rig.wav.exists() and await rig.rows() == []
    # The next scan uploads again and this time the read-back matches.
    assert await rig.pipeline.scan() == {SERIAL: Outcome.STORED}
    [row] = await rig.rows()
    assert not rig.wav.exists()
    assert row.sha256 == await rig.store.digest(KEY)
