"""A web application with a wallboard whose AMI client never starts (AMI "down"), for the API and page tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.agents.state import AgentRegistry
from callcenter.api.context import ApiServices
from callcenter.api.tokens import TokenService
from callcenter.asterisk.provisioning import AsteriskProvisioner
from callcenter.db.session import Database
from callcenter.desk.http import panel_hub
from callcenter.desk.screenpop import ScreenPops
from callcenter.health.services import HealthService
from callcenter.telephony.ami import AmiClient
from callcenter.telephony.fastagi import FastAgiServer
from callcenter.wallboard.services import WallboardService
from callcenter.web.app import create_app
from tests.apiclient import Api, api_settings
from tests.harness import free_tcp_port


@pytest.fixture
async def board_api(db: Database, tmp_path: Path) -> AsyncIterator[tuple[Api, WallboardService]]:
    settings = api_settings(tmp_path / "board")  # beside the `api` fixture's, which some tests use too
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started: AMI "down"
    tokens = TokenService.for_settings(settings)
    wallboard = WallboardService(db, ami, AgentRegistry(), timezone="Asia/Shanghai")
    hub = panel_hub()
    app = create_app(HealthService(db, ami, FastAgiServer("127.0.0.1", 0, {}), ami_label="a", agi_label="g"),
                     ApiServices(db=db, tokens=tokens, provisioner=AsteriskProvisioner(settings, db, ami),
                                 wallboard=wallboard),
                     desk=(hub, ScreenPops(db, hub)))
    async with TestClient(TestServer(app)) as client:
        yield Api(client, db, settings, tokens), wallboard
