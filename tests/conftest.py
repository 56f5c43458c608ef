from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.config import Settings
from tests import harness
from tests.mqtt import TestBroker


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The real stack (Asterisk + the platform process + SIPp) runs every end-to-end test on SQLite, the embedded
    default; only tests marked ``every_database`` run on PostgreSQL too. Every database behaviour is covered on both
    backends by the ``db_url`` tests; end to end, a representative set proves the platform process works on
    PostgreSQL without paying twice for each test's telephony wall-clock time (queue waits, RTP timeouts)."""
    if "stack" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker("every_database") is not None
        metafunc.parametrize("stack", harness.backends() if marked else ["sqlite"], indirect=True, scope="module")


@pytest.fixture(params=harness.backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL for each backend under test (SQLite; PostgreSQL when configured)."""
    with harness.database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def migrated_db_url(db_url: str) -> str:
    harness.migrated_database(db_url)
    return db_url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"CC_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
async def db(migrated_db_url: str):
    from callcenter.db.session import Database

    database = Database(migrated_db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBroker]:
    """The real Mosquitto on a free loopback port, started as `callcenter mqtt start` starts the platform's; one for
    the session (tests that kill it start it again)."""
    broker = TestBroker.start(tmp_path_factory.mktemp("mosquitto"), harness.free_tcp_port())
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker(mosquitto: TestBroker) -> TestBroker:
    """The session's broker, running (a test before may have killed it)."""
    mosquitto.ensure_running()
    return mosquitto
