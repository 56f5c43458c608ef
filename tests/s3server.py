"""A real S3 API server for tests: moto in server mode, as a separate process on a free loopback port.

Tests talk to it over HTTP with the same boto3 client production uses; nothing in-process is patched. It can be
stopped and started again on the same port to play an S3 outage (its buckets are in memory: a restart empties it).
A server that does not come up is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.harness import end_process, free_tcp_port

REGION = "eu-central-1"
ACCESS_KEY = "moto-test-key"
SECRET_KEY = "moto-test-secret"  # moto accepts any credentials


class MotoServer:
    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_tcp_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        assert self._process is None, "already running"
        log = self.log_path.open("ab")
        self._process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                          "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"moto server exited at start: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server not answering on {self.endpoint_url}: {self._log_tail()}") \
                        from None
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        end_process(process)

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                     region_name=REGION)

    def client(self) -> Any:
        """A plain client for a test's own look at the bucket (not the store's)."""
        return self.session().client("s3", endpoint_url=self.endpoint_url)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def bucket_name() -> str:
    return f"cc-test-{secrets.token_hex(4)}"


@contextlib.contextmanager
def running_moto(log_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One server for the tests that only need S3 to be there; each test uses its own bucket."""
    with running_moto(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def private_moto_server(tmp_path: Path) -> Iterator[MotoServer]:
    """A server of the test's own, which it may stop and restart (an outage)."""
    with running_moto(tmp_path / "moto.log") as server:
        yield server


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials where boto3's default chain looks (the environment), as an operator would give them."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
