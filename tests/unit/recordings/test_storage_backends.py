"""Which store a recording is read from: its row's backend, so recordings stored locally before a switch to S3
(and those in S3 after a switch back) still play; the stores come from CC_* settings and boto3's credential chain."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

from callcenter.api.context import TOKENS
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.recordings.backends import RECORDINGS, RecordingStores
from callcenter.recordings.models import Recording
from callcenter.recordings.s3 import S3RecordingStore
from callcenter.recordings.storage import LocalRecordingStore, RecordingStore
from callcenter.users.models import Role
from tests.apiclient import Api, assembled
from tests.s3server import REGION, MotoServer, bucket_name

LOCAL_AUDIO = b"OggS local " * 1000
S3_AUDIO = b"OggS in s3 " * 2000
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)

AppFactory = Callable[[Settings], AbstractAsyncContextManager[tuple[Api, RecordingStores]]]


def _settings(tmp_path: Path, server: MotoServer, bucket: str, storage: str) -> Settings:
    root = tmp_path / "asterisk-root"
    (root / "usr/lib/asterisk/modules").mkdir(parents=True, exist_ok=True)
    return Settings.from_env({
        "CC_DATA_DIR": str(tmp_path / "data"), "CC_ASTERISK_ROOT": str(root),
        "CC_ASTERISK_INSTANCE": f"unit-{secrets.token_hex(3)}", "CC_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "CC_RECORDING_STORAGE": storage, "CC_S3_BUCKET": bucket, "CC_S3_PREFIX": "cc/recordings",
        "CC_S3_REGION": REGION, "CC_S3_ENDPOINT_URL": server.endpoint_url,
    })


@pytest.fixture
def platform_app(db: Database, aws_credentials: None) -> AppFactory:
    """The REST API with the stores the platform builds from ``settings`` (credentials from the environment)."""

    @asynccontextmanager
    async def running(settings: Settings) -> AsyncIterator[tuple[Api, RecordingStores]]:
        app = assembled(db, settings).web
        stores, tokens = app[RECORDINGS], app[TOKENS]
        await stores.start()
        try:
            async with TestClient(TestServer(app)) as client:
                yield Api(client, db, settings, tokens), stores
        finally:
            await stores.stop()

    return running


async def _record(db: Database, store: RecordingStore, serial: str, audio: bytes, tmp_path: Path) -> int:
    source = tmp_path / f"{serial}.ogg"
    source.write_bytes(audio)
    key = f"2026/03/01/{serial}.ogg"
    stored = await store.put(key, source)
    async with db.transaction() as session:
        row = Recording(serial_number=serial, storage_backend=store.backend, storage_key=key,
                        audio_format="ogg/opus", duration_seconds=10.0, size_bytes=stored.size_bytes,
                        sha256=stored.sha256, created_at=T0, expires_at=T0 + dt.timedelta(days=92))
        session.add(row)
        await session.flush()
        return row.id


async def _eventually(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """The probe's answer once it stops raising (the bucket is prepared in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return probe()
        except ClientError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _play(api: Api, recording_id: int, range_header: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {await api.token(Role.AUDITOR)}"}
    if range_header:
        headers["Range"] = range_header
    response = await api.client.get(f"/api/v1/recordings/{recording_id}/audio", headers=headers,
                                    params={"reason": "storage backend test"})
    return response.status, await response.read()


async def test_recordings_play_from_their_own_backend_across_a_switch_to_s3_and_back(
        db: Database, moto_server: MotoServer, platform_app: AppFactory, tmp_path: Path) -> None:
    bucket = bucket_name()
    moto_server.create_bucket(bucket)  # an operator's bucket; its encryption and lifecycle rule come at start
    local_only = _settings(tmp_path, moto_server, bucket, "local").replace(s3_bucket="")
    async with platform_app(local_only) as (api, stores):
        assert [store.backend for store in stores] == ["local"]
        before = await _record(db, stores.primary, "SOS-20260301080000-1", LOCAL_AUDIO, tmp_path)
        assert await _play(api, before, "bytes=5-14") == (206, LOCAL_AUDIO[5:15])

    # CC_RECORDING_STORAGE=s3: new recordings go to the bucket (prepared at start), the old one still plays.
    async with platform_app(_settings(tmp_path, moto_server, bucket, "s3")) as (api, stores):
        assert isinstance(stores.primary, S3RecordingStore) and stores.primary.prefix == "cc/recordings/"
        assert isinstance(stores.get("local"), LocalRecordingStore)
        after = await _record(db, stores.primary, "SOS-20260301090000-2", S3_AUDIO, tmp_path)
        assert await _play(api, before) == (200, LOCAL_AUDIO)
        assert await _play(api, before, "bytes=-10") == (206, LOCAL_AUDIO[-10:])
        assert await _play(api, after) == (200, S3_AUDIO)
        assert await _play(api, after, "bytes=100-21999") == (206, S3_AUDIO[100:22000])
        assert await _play(api, after, "bytes=21990-") == (206, S3_AUDIO[21990:])
        s3 = moto_server.client()
        assert s3.head_object(Bucket=bucket, Key="cc/recordings/2026/03/01/SOS-20260301090000-2.ogg")
        rules = await _eventually(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])
        assert rules[0]["Expiration"] == {"Days": 92} and rules[0]["Filter"]["And"]["Prefix"] == "cc/recordings/"

    # Back to local with the bucket still configured: the S3 recording still plays.
    async with platform_app(_settings(tmp_path, moto_server, bucket, "local")) as (api, stores):
        assert isinstance(stores.primary, LocalRecordingStore)
        assert await _play(api, after, "bytes=0-3") == (206, b"OggS")
        assert await _play(api, before, "bytes=0-3") == (206, b"OggS")

    # Without the bucket the S3 recording cannot be read here: 503 and logged, not an error page.
    async with platform_app(local_only) as (api, _):
        status, body = await _play(api, after)
        assert status == 503 and b"cannot be read from storage" in body


async def test_s3_down_is_503_for_the_player_not_a_server_error(
        db: Database, private_moto_server: MotoServer, platform_app: AppFactory, tmp_path: Path) -> None:
    bucket = bucket_name()
    private_moto_server.create_bucket(bucket)
    async with platform_app(_settings(tmp_path, private_moto_server, bucket, "s3")) as (api, stores):
        recording = await _record(db, stores.primary, "SOS-20260301080000-3", S3_AUDIO, tmp_path)
        assert (await _play(api, recording))[0] == 200
        private_moto_server.stop()
        status, body = await _play(api, recording)
        assert status == 503 and b"cannot be read from storage" in body


async def test_a_store_that_cannot_be_prepared_yet_is_tried_again_with_a_growing_wait(tmp_path: Path) -> None:
    calls: list[float] = []

    class LateStore(LocalRecordingStore):
        backend = "late"

        async def prepare(self) -> None:
            calls.append(asyncio.get_running_loop().time())
            if len(calls) < 4:
                raise ConnectionError("not yet")

    stores = RecordingStores(LocalRecordingStore(tmp_path / "local"), LateStore(tmp_path / "late"),
                             retry_seconds=0.02, max_retry_seconds=0.04)
    with capture_logs() as logs:
        await stores.start()
        async with asyncio.timeout(5):
            while len(calls) < 4:  # noqa: ASYNC110 - the preparation runs in its own task
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        await stores.stop()
    failed = [entry for entry in logs if entry["event"] == "recording.store_prepare_failed"]
    assert [(e["backend"], e["error_type"], e["retry_in"]) for e in failed] == [
        ("late", "ConnectionError", 0.02), ("late", "ConnectionError", 0.04), ("late", "ConnectionError", 0.04)]
    assert len(calls) == 4  # and none after it succeeded
    assert all(later - earlier >= 0.015 for earlier, later in itertools.pairwise(calls))
