"""Retention tests run against each recording store: the local disk and S3 (a moto server process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.db.session import Database
from callcenter.recordings.s3 import S3RecordingStore
from callcenter.recordings.storage import LocalRecordingStore, RecordingStore
from tests.s3server import REGION, MotoServer, bucket_name, moto_server  # noqa: F401 - fixture
from tests.unit.retention.rig import Rig


def s3_store(server: MotoServer) -> S3RecordingStore:
    bucket = bucket_name()
    server.create_bucket(bucket)
    return S3RecordingStore(bucket, retention_days=92, region=REGION, endpoint_url=server.endpoint_url,
                            session=server.session())


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RecordingStore:
    if request.param == "local":
        return LocalRecordingStore(tmp_path / "recordings")
    return s3_store(request.getfixturevalue("moto_server"))


@pytest.fixture
def rig(db: Database, store: RecordingStore, tmp_path: Path, request: pytest.FixtureRequest) -> Rig:
    """Each store; with S3, the rig can read objects' tags through its own client."""
    s3 = request.getfixturevalue("moto_server").client() if isinstance(store, S3RecordingStore) else None
    return Rig(db, store, tmp_path, s3=s3)


# For what does not depend on the store (call logs): the local one only.
LOCAL_ONLY = pytest.mark.parametrize("store", ["local"], indirect=True)
