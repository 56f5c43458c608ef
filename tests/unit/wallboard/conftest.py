"""A web application with a wallboard whose AMI client never starts (AMI "down"), for the API and page tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.api.context import TOKENS
from callcenter.db.session import Database
from callcenter.wallboard.http import WALLBOARD
from callcenter.wallboard.services import WallboardService
from tests.apiclient import Api, api_settings, assembled


@pytest.fixture
async def board_api(db: Database, tmp_path: Path) -> AsyncIterator[tuple[Api, WallboardService]]:
    settings = api_settings(tmp_path / "board")  # beside the `api` fixture's, which some tests use too
    app = assembled(db, settings).web  # its AMI client never starts: AMI "down"
    async with TestClient(TestServer(app)) as client:
        yield Api(client, db, settings, app[TOKENS]), app[WALLBOARD]
