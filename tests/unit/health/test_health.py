"""/healthz, /healthz/ready and /healthz/live with real components in real up and down states: readiness is 503
only while an SOS-critical part (AMI, FastAGI) is down; a sick database or a full disk is 200 "degraded"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcenter.calls.journal import AMI_EVENT
from callcenter.db.session import Database
from callcenter.health.disk import MB, DiskMonitor, Watched
from callcenter.health.services import HealthService, MqttProbe
from callcenter.journal import Journal, JournalProbe
from callcenter.telephony.ami import AmiClient
from callcenter.telephony.fastagi import FastAgiServer
from callcenter.web.app import create_app
from tests import tmpfs
from tests.apiclient import Api
from tests.harness import free_tcp_port
from tests.mqtt import TestBroker, eventually, running
from tests.unit.telephony.test_ami import SECRET, USERNAME, FakeAsterisk


@pytest.fixture
async def ami() -> AsyncIterator[AmiClient]:
    """An AMI client logged in to a scripted AMI peer: "AMI up"."""
    peer = FakeAsterisk()
    await peer.start()
    client = AmiClient("127.0.0.1", peer.port, USERNAME, SECRET, reconnect_delay=1, action_timeout=2.0,
                       heartbeat_interval=30.0)
    await client.start()
    try:
        async with asyncio.timeout(5):
            while not client.connected:  # noqa: ASYNC110 - the client's own state, no event to wait on
                await asyncio.sleep(0.01)
        yield client
    finally:
        await client.stop()
        await peer.stop()


@pytest.fixture
async def fastagi() -> AsyncIterator[FastAgiServer]:
    server = FastAgiServer("127.0.0.1", 0, {})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Path]:
    with tmpfs.mounted(tmp_path / "spool", size_kb=2048) as mounted:
        yield mounted


def _down_ami() -> AmiClient:
    return AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started: not connected


async def _get(health: HealthService, path: str) -> tuple[int, dict[str, object], str]:
    async with TestClient(TestServer(create_app(health))) as client:
        response = await client.get(path)
        return response.status, await response.json(), response.headers.get("Cache-Control", "")


async def test_all_down_is_503_and_names_each_failure() -> None:
    unreachable_db = Database(f"postgresql+asyncpg://127.0.0.1:{free_tcp_port()}/none")
    fastagi = FastAgiServer("127.0.0.1", 0, {})  # never started: not listening
    health = HealthService(unreachable_db, _down_ami(), fastagi, ami_label="ami", agi_label="agi")
    try:
        status, body, cache = await _get(health, "/healthz")
    finally:
        await unreachable_db.dispose()
    assert status == 503 and cache == "no-store"
    assert (body["status"], body["ready"], body["failing"]) == ("down", False, ["ami", "fastagi", "database"])
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert {name: (check["ok"], check["critical"]) for name, check in checks.items()} == {
        "ami": (False, True), "fastagi": (False, True), "database": (False, False),
    }
    assert "unreachable" in checks["database"]["detail"]


async def test_database_and_fastagi_up_but_ami_down_is_still_503(db: Database) -> None:
    fastagi = FastAgiServer("127.0.0.1", 0, {})
    await fastagi.start()
    try:
        health = HealthService(db, _down_ami(), fastagi, ami_label="ami", agi_label="agi")
        report = await health.check()
        status, body, _ = await _get(health, "/healthz/ready")
    finally:
        await fastagi.stop()
    assert report.checks["database"].ok and report.checks["fastagi"].ok
    assert not report.checks["ami"].ok
    assert not report.ok and not report.ready and report.status == "down"
    assert status == 503 and body["failing"] == ["ami"]


async def test_fastagi_not_listening_is_503_even_with_ami_up(db: Database, ami: AmiClient) -> None:
    health = HealthService(db, ami, FastAgiServer("127.0.0.1", 0, {}), ami_label="ami", agi_label="agi")
    status, body, _ = await _get(health, "/healthz")
    assert status == 503 and body["status"] == "down" and body["failing"] == ["fastagi"]


async def test_a_database_down_is_degraded_not_unready(ami: AmiClient, fastagi: FastAgiServer) -> None:
    """The elder is queued and answered without the database: a monitor is told, SOS traffic is not turned away."""
    unreachable_db = Database(f"postgresql+asyncpg://127.0.0.1:{free_tcp_port()}/none")
    health = HealthService(unreachable_db, ami, fastagi, ami_label="ami", agi_label="agi")
    try:
        for path in ("/healthz", "/healthz/ready"):
            status, body, _ = await _get(health, path)
            assert status == 200, path
            assert (body["status"], body["ready"], body["failing"]) == ("degraded", True, ["database"])
    finally:
        await unreachable_db.dispose()


async def test_everything_up_is_ok_and_disks_say_how_much_is_free(db: Database, ami: AmiClient,
                                                                  fastagi: FastAgiServer, spool: Path) -> None:
    disk = DiskMonitor([Watched("spool", spool, 1 * MB, "the spool")], interval=3600)
    health = HealthService(db, ami, fastagi, ami_label="ami", agi_label="agi", probes=[disk])
    status, body, _ = await _get(health, "/healthz")
    assert status == 200 and (body["status"], body["ready"], body["failing"]) == ("ok", True, [])
    checks = body["checks"]
    assert isinstance(checks, dict) and list(checks) == ["ami", "fastagi", "database", "spool"]
    assert checks["spool"] == {"ok": True, "critical": False, "level": "ok", "free_mb": 2, "min_free_mb": 1,
                               "path": str(spool), "detail": checks["spool"]["detail"]}


async def test_a_full_spool_is_degraded_at_once_and_ok_again_when_space_returns(
        db: Database, ami: AmiClient, fastagi: FastAgiServer, spool: Path) -> None:
    disk = DiskMonitor([Watched("spool", spool, 1 * MB, "the spool")], interval=3600)
    health = HealthService(db, ami, fastagi, ami_label="ami", agi_label="agi", probes=[disk])
    tmpfs.fill(spool)
    # Each answer measures afresh: no waiting for the monitor's next round.
    status, body, _ = await _get(health, "/healthz/ready")
    assert status == 200 and (body["status"], body["failing"]) == ("degraded", ["spool"])
    spool_check = body["checks"]["spool"]  # type: ignore[index]
    assert (spool_check["ok"], spool_check["level"], spool_check["free_mb"]) == (False, "full", 0)
    tmpfs.free(spool)
    status, body, _ = await _get(health, "/healthz")
    assert status == 200 and body["status"] == "ok"


async def test_liveness_answers_while_the_loop_runs_whatever_is_down() -> None:
    unreachable_db = Database(f"postgresql+asyncpg://127.0.0.1:{free_tcp_port()}/none")
    health = HealthService(unreachable_db, _down_ami(), FastAgiServer("127.0.0.1", 0, {}), ami_label="ami",
                           agi_label="agi")
    try:
        status, body, cache = await _get(health, "/healthz/live")
    finally:
        await unreachable_db.dispose()
    assert (status, body, cache) == (200, {"status": "alive"}, "no-store")


async def test_a_journal_backlog_is_degraded_until_it_is_replayed(db: Database, ami: AmiClient,
                                                                 fastagi: FastAgiServer, tmp_path: Path) -> None:
    """Writes waiting in the journal mean the call log is behind, not that an SOS is lost: 200, degraded."""
    journal = Journal(tmp_path / "journal")
    health = HealthService(db, ami, fastagi, ami_label="ami", agi_label="agi", probes=[JournalProbe(journal)])
    assert (await _get(health, "/healthz"))[1]["status"] == "ok"
    for linkedid in ("1.1", "1.2"):
        await journal.append(AMI_EVENT, {"Event": "Newchannel", "Linkedid": linkedid})
    status, body, _ = await _get(health, "/healthz")
    assert status == 200 and (body["status"], body["failing"]) == ("degraded", ["journal"])
    check = body["checks"]["journal"]  # type: ignore[index]
    assert (check["ok"], check["critical"], check["backlog"]) == (False, False, 2)
    applied: list[str] = []

    async def apply(_kind: str, payload: dict[str, object]) -> None:
        applied.append(str(payload["Linkedid"]))

    assert await journal.replay(apply) == 2 and applied == ["1.1", "1.2"]
    status, body, _ = await _get(health, "/healthz")
    assert status == 200 and body["status"] == "ok" and body["checks"]["journal"]["backlog"] == 0  # type: ignore[index]


async def test_mqtt_off_passes_and_says_why_on_healthz_and_the_status_page(api: Api) -> None:
    """The platform's own assembly with CC_MQTT_URL=off (the API tests' default): off is a configuration, not a
    failure; the line says so, and why."""
    body = await (await api.client.get("/healthz")).json()
    assert body["checks"]["mqtt"] == {"ok": True, "critical": False, "detail": "off: CC_MQTT_URL=off", "state": "off"}
    assert "mqtt" not in body["failing"]
    page = await (await api.client.get("/status?lang=en")).text()
    assert "MQTT broker (devices)" in page and "Off" in page and "off: CC_MQTT_URL=off" in page


async def test_mqtt_connected_passes_and_lost_is_degraded_with_its_counters(db: Database, ami: AmiClient,
                                                                           fastagi: FastAgiServer,
                                                                           broker: TestBroker) -> None:
    """The devices' channel down delays alarms (devices repeat them) and never an SOS: degraded, not unready."""
    client = broker.platform_client()
    health = HealthService(db, ami, fastagi, ami_label="ami", agi_label="agi", probes=[MqttProbe(client)])
    async with running(client):
        status, body, _ = await _get(health, "/healthz")
        assert status == 200 and body["status"] == "ok"
        check = body["checks"]["mqtt"]  # type: ignore[index]
        assert (check["ok"], check["critical"], check["state"], check["connections"]) == (True, False,
                                                                                         "connected", 1)
        broker.kill()
        await eventually(lambda: not client.connected, what="the loss to be seen")
        status, body, _ = await _get(health, "/healthz")
        assert status == 200 and (body["status"], body["failing"]) == ("degraded", ["mqtt"])
        check = body["checks"]["mqtt"]  # type: ignore[index]
        assert check["state"] == "disconnected" and check["detail"].startswith("not connected to 127.0.0.1:")
        broker.ensure_running()
