"""Recordings in an S3 bucket (AWS, or an S3-compatible server through ``CC_S3_ENDPOINT_URL``), through boto3.

boto3 blocks, so every call runs in a worker thread: the event loop (AMI, FastAGI, the web) never waits on S3.

* **Put**: one PutObject per recording (Opus recordings are ~88 KB a minute, far below multipart sizes) with
  ``ServerSideEncryption=AES256``, the body's SHA-256 in ``x-amz-checksum-sha256`` (S3 refuses a body that does
  not match it) and the tag ``callcenter-retention=standard``. Transient failures (the connection, timeouts,
  5xx, throttling) are retried with exponential backoff; a lasting one raises, and the pipeline keeps the WAV in
  its spool and tries again on its next scan.
* **Digest** reads the object back and hashes what S3 serves: the pipeline compares it with the SHA-256 of the
  file it uploaded before it registers the recording and lets the spool copy go.
* **Read** is GetObject with ``Range``, so the audio API's range requests cost only the bytes asked for.
* **Prepare** (at start, retried until it succeeds, idempotent): creates the bucket if it does not exist, sets
  default encryption (AES256) unless the bucket already has one (a KMS default is kept), and puts the lifecycle
  rule ``callcenter-recordings-retention`` — expire objects under the prefix tagged ``standard`` after the
  recording retention — leaving the bucket's other rules alone. A recording under legal hold is re-tagged
  ``legal-hold`` (``set_legal_hold``), which takes it out of the rule.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from callcenter.config import S3Settings
from callcenter.logs import get_logger
from callcenter.recordings.storage import CHUNK, StoredObject, check_key

log = get_logger(__name__)

RULE_ID = "callcenter-recordings-retention"
RETENTION_TAG = "callcenter-retention"
STANDARD = "standard"  # expires with the lifecycle rule
LEGAL_HOLD = "legal-hold"  # kept until the hold is lifted
SSE = "AES256"
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_CONTENT_TYPES = {"ogg": "audio/ogg", "wav": "audio/wav"}


@dataclasses.dataclass(frozen=True, slots=True)
class BucketSetup:
    """What ``prepare`` found and did: for the log line and for tests."""

    bucket_created: bool
    encryption: str  # the bucket's default SSE algorithm after prepare
    encryption_set: bool
    lifecycle_set: bool


class S3RecordingStore:
    backend = "s3"

    def __init__(self, bucket: str, *, retention_days: int, prefix: str = "recordings/", region: str | None = None,
                 endpoint_url: str | None = None, session: boto3.session.Session | None = None,
                 put_attempts: int = 4, retry_seconds: float = 0.5, timeout_seconds: float = 10.0) -> None:
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"an S3 prefix ends with '/': {prefix!r}")
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.retention_days = retention_days
        self._put_attempts = max(1, put_attempts)
        self._retry_seconds = retry_seconds
        config = Config(
            # botocore's own retries (with backoff) for every call; puts get more attempts in put() on top.
            retries={"mode": "standard", "total_max_attempts": 2},
            connect_timeout=timeout_seconds, read_timeout=timeout_seconds * 3,
            # S3-compatible servers are reached by path (http://host:9000/bucket/key): no wildcard DNS needed.
            s3={"addressing_style": "path"} if endpoint_url else None,
            # The SHA-256 checksum is sent explicitly on puts; no CRC32 trailer on top of it.
            request_checksum_calculation="when_required",
        )
        # Credentials: boto3's own chain (environment, shared files, instance role); never settings.
        self._client = (session or boto3.session.Session()).client("s3", region_name=region,
                                                                    endpoint_url=endpoint_url, config=config)

    @classmethod
    def from_settings(cls, s3: S3Settings, *, retention_days: int) -> S3RecordingStore:
        return cls(s3.bucket, prefix=s3.prefix, region=s3.region, endpoint_url=s3.endpoint_url,
                   retention_days=retention_days)

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    # -- the RecordingStore methods ----------------------------------------------------------------------------

    async def put(self, key: str, source: Path) -> StoredObject:
        size, sha256 = await asyncio.to_thread(_size_and_sha256, source)

        def retrying(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            log.warning("recording.s3_put_retry", bucket=self.bucket, key=key, attempt=state.attempt_number,
                        error=str(error)[-300:], retry_in=round(wait, 2))

        # Jittered, so the pipeline's parallel uploads do not all come back to a recovering S3 at the same moment.
        backoff = wait_exponential_jitter(initial=self._retry_seconds, jitter=self._retry_seconds / 2)
        async for attempt in AsyncRetrying(retry=retry_if_exception(_transient), wait=backoff, reraise=True,
                                           stop=stop_after_attempt(self._put_attempts), before_sleep=retrying):
            with attempt:
                await asyncio.to_thread(self._put, key, source, size, sha256)
        return StoredObject(key, size, sha256)

    def _put(self, key: str, source: Path, size: int, sha256: str) -> None:
        with source.open("rb") as body:
            self._client.put_object(
                Bucket=self.bucket, Key=self.object_key(key), Body=body, ContentLength=size,
                ContentType=_CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream"),
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(), ServerSideEncryption=SSE,
                Tagging=urllib.parse.urlencode({RETENTION_TAG: STANDARD}),
            )

    async def size(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _code(error) in _NOT_FOUND:
                return None
            raise
        return int(head["ContentLength"])

    async def digest(self, key: str) -> str:
        return await asyncio.to_thread(self._digest, key)

    def _digest(self, key: str) -> str:
        body = self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        digest = hashlib.sha256()
        try:
            while chunk := body.read(CHUNK):
                digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        extra = {"Range": f"bytes={start}-{'' if end is None else end}"} if start or end is not None else {}
        response = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket,
                                           Key=self.object_key(key), **extra)
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(body.close)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=self.object_key(key))

    async def set_legal_hold(self, key: str, held: bool) -> None:
        """A held recording leaves the lifecycle rule (its tag is no longer ``standard``); lifting puts it back."""
        await asyncio.to_thread(self._client.put_object_tagging, Bucket=self.bucket, Key=self.object_key(key),
                                Tagging={"TagSet": [{"Key": RETENTION_TAG, "Value": LEGAL_HOLD if held else STANDARD}]})

    # -- the bucket ---------------------------------------------------------------------------------------------

    async def prepare(self) -> BucketSetup:
        """Bucket, default encryption and the retention lifecycle rule; does nothing that is already so."""
        setup = await asyncio.to_thread(self._prepare)
        log.info("recording.s3_ready", bucket=self.bucket, prefix=self.prefix, retention_days=self.retention_days,
                 **dataclasses.asdict(setup))
        return setup

    def _prepare(self) -> BucketSetup:
        created = self._ensure_bucket()
        encryption, encryption_set = self._ensure_encryption()
        return BucketSetup(bucket_created=created, encryption=encryption, encryption_set=encryption_set,
                           lifecycle_set=self._ensure_lifecycle())

    def _ensure_bucket(self) -> bool:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as error:
            if _code(error) not in _NOT_FOUND:
                raise
        extra: dict[str, Any] = {}
        if self.region and self.region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self._client.create_bucket(Bucket=self.bucket, **extra)
        return True

    def _ensure_encryption(self) -> tuple[str, bool]:
        try:
            rules = self._client.get_bucket_encryption(Bucket=self.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as error:
            if _code(error) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            rules = []
        for rule in rules:
            algorithm = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
            if algorithm:
                return algorithm, False  # AES256 already, or a KMS key the operator chose: kept
        self._client.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": SSE}}]})
        return SSE, True

    def lifecycle_rule(self) -> dict[str, Any]:
        tag = {"Key": RETENTION_TAG, "Value": STANDARD}
        scope = {"And": {"Prefix": self.prefix, "Tags": [tag]}} if self.prefix else {"Tag": tag}
        return {"ID": RULE_ID, "Status": "Enabled", "Filter": scope, "Expiration": {"Days": self.retention_days}}

    def _ensure_lifecycle(self) -> bool:
        try:
            rules = self._client.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"]
        except ClientError as error:
            if _code(error) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        ours = self.lifecycle_rule()
        if any(_same_rule(rule, ours) for rule in rules):
            return False
        # The configuration is replaced whole: keep every rule that is not ours.
        others = [rule for rule in rules if rule.get("ID") != RULE_ID]
        self._client.put_bucket_lifecycle_configuration(Bucket=self.bucket,
                                                        LifecycleConfiguration={"Rules": [*others, ours]})
        return True


def _same_rule(found: dict[str, Any], ours: dict[str, Any]) -> bool:
    return all(found.get(field) == ours[field] for field in ("ID", "Status", "Filter", "Expiration"))


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _transient(error: BaseException) -> bool:
    """Worth another try soon: no answer, a timeout, a server error, throttling. Not: refusals (403, 404, …)."""
    if isinstance(error, BotoCoreError):
        return True  # connection refused or reset, timeouts, a truncated body
    if not isinstance(error, ClientError):
        return False
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or status in (408, 429) or _code(error) in ("RequestTimeout", "SlowDown", "Throttling")
