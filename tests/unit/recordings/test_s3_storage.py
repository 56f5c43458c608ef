"""The S3 recording store against a real S3 API server process (moto in server mode): objects, ranges, the
bucket's encryption and lifecycle rule, legal holds, and uploads that retry through an outage."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from callcenter.recordings.s3 import LEGAL_HOLD, RETENTION_TAG, RULE_ID, STANDARD, BucketSetup, S3RecordingStore
from callcenter.recordings.storage import InvalidKey
from tests.s3server import MotoServer, bucket_name

DATA = bytes(range(256)) * 1000  # 256 000 bytes: several read chunks
KEY = "2026/03/01/SOS-20260301080000-1.ogg"


def _store(server: MotoServer, bucket: str, *, retention_days: int = 92, prefix: str = "recordings/",
           **options: object) -> S3RecordingStore:
    return S3RecordingStore(bucket, prefix=prefix, region="eu-central-1", endpoint_url=server.endpoint_url,
                            retention_days=retention_days, session=server.session(), **options)  # type: ignore[arg-type]


async def _collect(store: S3RecordingStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


async def test_put_size_digest_ranges_delete(moto_server: MotoServer, tmp_path: Path) -> None:
    bucket = bucket_name()
    moto_server.create_bucket(bucket)
    store = _store(moto_server, bucket)
    source = tmp_path / "source.ogg"
    source.write_bytes(DATA)

    stored = await store.put(KEY, source)
    assert (stored.key, stored.size_bytes, stored.sha256) == (KEY, len(DATA), hashlib.sha256(DATA).hexdigest())
    assert await store.digest(KEY) == stored.sha256  # read back from the server
    assert await store.size(KEY) == len(DATA)
    assert await _collect(store, KEY) == DATA
    assert await _collect(store, KEY, 70_000, 200_000) == DATA[70_000:200_001]
    assert await _collect(store, KEY, len(DATA) - 1) == DATA[-1:]
    assert await _collect(store, KEY, 0, 0) == DATA[:1]

    # The object as the server holds it: under the prefix, encrypted, tagged for the lifecycle rule.
    s3 = moto_server.client()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [f"recordings/{KEY}"]
    head = s3.head_object(Bucket=bucket, Key=f"recordings/{KEY}")
    assert head["ServerSideEncryption"] == "AES256" and head["ContentType"] == "audio/ogg"
    tags = s3.get_object_tagging(Bucket=bucket, Key=f"recordings/{KEY}")["TagSet"]
    assert tags == [{"Key": RETENTION_TAG, "Value": STANDARD}]

    # A put over the key replaces the object whole.
    source.write_bytes(b"shorter")
    await store.put(KEY, source)
    assert await _collect(store, KEY) == b"shorter" and await store.size(KEY) == 7
    await store.delete(KEY)
    await store.delete(KEY)  # already gone: no error
    assert await store.size(KEY) is None
    with pytest.raises(InvalidKey):
        await store.put("../escape.ogg", source)


async def test_prepare_creates_the_bucket_encrypts_it_and_expires_recordings_after_the_retention(
        moto_server: MotoServer) -> None:
    bucket = bucket_name()
    store = _store(moto_server, bucket, retention_days=92)
    assert await store.prepare() == BucketSetup(bucket_created=True, encryption="AES256", encryption_set=True,
                                                lifecycle_set=True)
    s3 = moto_server.client()
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["ID"] == RULE_ID and rule["Status"] == "Enabled" and rule["Expiration"] == {"Days": 92}
    assert rule["Filter"] == {"And": {"Prefix": "recordings/", "Tags": [{"Key": RETENTION_TAG, "Value": STANDARD}]}}

    # Idempotent: a second start changes nothing.
    assert await store.prepare() == BucketSetup(bucket_created=False, encryption="AES256", encryption_set=False,
                                                lifecycle_set=False)

    # An operator's own rule survives; a longer retention replaces only ours.
    theirs = {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [theirs, rule]})
    longer = _store(moto_server, bucket, retention_days=400)
    assert (await longer.prepare()).lifecycle_set
    found = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert found.keys() == {"logs", RULE_ID}
    assert found["logs"]["Expiration"] == {"Days": 7} and found[RULE_ID]["Expiration"] == {"Days": 400}


async def test_prepare_keeps_a_kms_default_and_without_prefix_scopes_the_rule_by_tag(
        moto_server: MotoServer) -> None:
    bucket = bucket_name()
    moto_server.create_bucket(bucket)
    s3 = moto_server.client()
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    setup = await _store(moto_server, bucket, prefix="").prepare()
    assert (setup.bucket_created, setup.encryption, setup.encryption_set) == (False, "aws:kms", False)
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    # A whole bucket: only the platform's own objects (tagged) expire.
    assert rule["Filter"] == {"Tag": {"Key": RETENTION_TAG, "Value": STANDARD}}


async def test_a_legal_hold_takes_the_object_out_of_the_lifecycle_rule(moto_server: MotoServer,
                                                                      tmp_path: Path) -> None:
    bucket = bucket_name()
    moto_server.create_bucket(bucket)
    store = _store(moto_server, bucket)
    source = tmp_path / "a.ogg"
    source.write_bytes(DATA)
    await store.put(KEY, source)
    s3 = moto_server.client()

    def tag() -> str:
        return s3.get_object_tagging(Bucket=bucket, Key=store.object_key(KEY))["TagSet"][0]["Value"]

    await store.set_legal_hold(KEY, True)
    assert tag() == LEGAL_HOLD
    await store.set_legal_hold(KEY, False)
    assert tag() == STANDARD


async def test_an_upload_retries_with_backoff_through_an_outage(private_moto_server: MotoServer,
                                                                tmp_path: Path) -> None:
    server = private_moto_server
    bucket = bucket_name()
    server.create_bucket(bucket)
    attempts: list[float] = []
    server_back = threading.Event()

    class CountingStore(S3RecordingStore):
        def _put(self, key: str, source: Path, size: int, sha256: str) -> None:
            attempts.append(time.monotonic())
            if len(attempts) > 1:
                # A restart of the server takes about 1 s but took longer than the first wait (4-6 s) on a busy
                # machine; the retry then found the restarted, still empty server (NoSuchBucket, rightly not
                # retried). Holding the retry until the bucket is back keeps the test about the backoff.
                server_back.wait(30)
            super()._put(key, source, size, sha256)

    store = CountingStore(bucket, prefix="recordings/", region="eu-central-1", endpoint_url=server.endpoint_url,
                          retention_days=92, session=server.session(), put_attempts=4, retry_seconds=4.0)
    source = tmp_path / "a.ogg"
    source.write_bytes(DATA)
    server.stop()
    upload = asyncio.create_task(store.put(KEY, source))
    deadline = time.monotonic() + 10
    while not attempts and time.monotonic() < deadline:  # noqa: ASYNC110 - the attempt runs in a worker thread
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert not upload.done() and len(attempts) == 1  # failed once, waiting to try again
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(server.create_bucket, bucket)  # the restarted server is empty
    server_back.set()
    stored = await asyncio.wait_for(upload, 30)
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 3.2
    assert await store.digest(KEY) == stored.sha256 == hashlib.sha256(DATA).hexdigest()


async def test_an_upload_gives_up_after_its_attempts_and_a_refusal_is_not_retried(
        private_moto_server: MotoServer, tmp_path: Path) -> None:
    server = private_moto_server
    source = tmp_path / "a.ogg"
    source.write_bytes(DATA)
    missing = _store(server, bucket_name(), put_attempts=3, retry_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(ClientError) as refused:  # no such bucket: retrying would not help
        await missing.put(KEY, source)
    assert refused.value.response["Error"]["Code"] == "NoSuchBucket" and time.monotonic() - started < 2
    server.stop()
    down = _store(server, bucket_name(), put_attempts=3, retry_seconds=0.05)
    with pytest.raises(EndpointConnectionError):
        await down.put(KEY, source)
