from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.config import Settings
from tests import harness


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
