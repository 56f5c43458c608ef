"""/healthz reports each lifeline, with real components in real up and down states."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from callcenter.db.session import Database
from callcenter.system.services import HealthService
from callcenter.telephony.ami import AmiClient
from callcenter.telephony.fastagi import FastAgiServer
from callcenter.web.app import create_app
from tests.harness import free_tcp_port


async def test_all_down_is_503_and_names_each_failure() -> None:
    unreachable_db = Database(f"postgresql+asyncpg://127.0.0.1:{free_tcp_port()}/none")
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started: not connected
    fastagi = FastAgiServer("127.0.0.1", 0, {})  # never started: not listening
    health = HealthService(unreachable_db, ami, fastagi, ami_label="ami", agi_label="agi")
    async with TestClient(TestServer(create_app(health))) as client:
        response = await client.get("/healthz")
        body = await response.json()
    await unreachable_db.dispose()
    assert response.status == 503
    assert body["status"] == "degraded"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "ami": False, "fastagi": False, "database": False,
    }
    assert "unreachable" in body["checks"]["database"]["detail"]


async def test_database_and_fastagi_up_but_ami_down_is_still_503(db: Database) -> None:
    fastagi = FastAgiServer("127.0.0.1", 0, {})
    await fastagi.start()
    try:
        health = HealthService(db, AmiClient("127.0.0.1", free_tcp_port(), "u", "s"), fastagi, ami_label="ami",
                               agi_label="agi")
        report = await health.check()
    finally:
        await fastagi.stop()
    assert report.checks["database"].ok and report.checks["fastagi"].ok
    assert not report.checks["ami"].ok
    assert not report.ok
