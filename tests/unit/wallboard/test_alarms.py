"""Disk alarms on the wallboard: a disk filling up (a real tmpfs) is pushed to supervisors at once, in the snapshot
and the API, and taken off when space returns; free space moving alone pushes nothing."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.agents.state import AgentRegistry
from callcenter.db.session import Database
from callcenter.desk.http import panel_hub
from callcenter.health.disk import MB, DiskMonitor, Watched
from callcenter.telephony.ami import AmiClient
from callcenter.users.models import Role
from callcenter.wallboard.services import WallboardService
from tests import tmpfs
from tests.apiclient import PASSWORD, Api
from tests.harness import free_tcp_port
from tests.unit.web.test_pages import log_in


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Path]:
    with tmpfs.mounted(tmp_path / "spool", size_kb=4096) as mounted:
        yield mounted


async def _next_board(queue: asyncio.Queue[dict[str, object]]) -> dict[str, object]:
    message = await asyncio.wait_for(queue.get(), 5)
    assert message["type"] == "wallboard"
    return message


async def test_a_disk_filling_up_is_pushed_to_supervisors_and_cleared_when_space_returns(db: Database,
                                                                                      spool: Path) -> None:
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started
    wallboard = WallboardService(db, ami, AgentRegistry(), timezone="Asia/Shanghai", min_interval=0.05, settle=0.1,
                                 refresh=30)
    disk = DiskMonitor([Watched("spool", spool, 2 * MB, "the spool")], interval=3600)
    wallboard.show_alarms(disk)
    hub = panel_hub()
    wallboard.publish_to(hub)
    await disk.refresh()
    await wallboard.start()
    try:
        supervisor = hub.subscribe("sup", Role.SUPERVISOR)
        wallboard.changed()
        assert (await _next_board(supervisor.queue))["alarms"] == []

        tmpfs.fill(spool, leave_kb=1536)
        await disk.refresh()
        [low] = (await _next_board(supervisor.queue))["alarms"]  # type: ignore[misc]
        assert {k: low[k] for k in ("code", "part", "severity", "free_mb", "min_free_mb")} == {
            "code": "disk_low", "part": "spool", "severity": "warning", "free_mb": 1, "min_free_mb": 2}

        tmpfs.fill(spool, leave_kb=1200)  # less free, same level: not worth a push
        await disk.refresh()
        wallboard.changed()
        await asyncio.sleep(0.5)
        assert supervisor.queue.empty()

        tmpfs.fill(spool)
        await disk.refresh()
        [full] = (await _next_board(supervisor.queue))["alarms"]  # type: ignore[misc]
        assert (full["code"], full["severity"], full["free_mb"]) == ("disk_full", "critical", 0)
        snapshot = await wallboard.snapshot()
        assert [(a.code, a.part) for a in snapshot.alarms] == [("disk_full", "spool")]

        tmpfs.free(spool)
        await disk.refresh()
        assert (await _next_board(supervisor.queue))["alarms"] == []
    finally:
        await wallboard.stop()


async def test_the_api_carries_the_alarms(board_api: tuple[Api, WallboardService], tmp_path: Path) -> None:
    board, wallboard = board_api
    with tmpfs.mounted(tmp_path / "store", size_kb=2048) as store:
        disk = DiskMonitor([Watched("storage", store, 1 * MB, "the store")], interval=3600)
        wallboard.show_alarms(disk)
        status, body = await board.request("GET", "/api/v1/wallboard", role=Role.SUPERVISOR)
        assert status == 200 and body["alarms"] == []
        tmpfs.fill(store)
        await disk.refresh()
        status, body = await board.request("GET", "/api/v1/wallboard", role=Role.SUPERVISOR)
    assert status == 200
    [alarm] = body["alarms"]
    assert (alarm["code"], alarm["part"], alarm["severity"], alarm["free_mb"], alarm["min_free_mb"]) == (
        "disk_full", "storage", "critical", 0, 1)


async def test_the_page_has_the_hidden_banner_and_its_words_in_both_languages(
        board_api: tuple[Api, WallboardService]) -> None:
    board, _ = board_api
    supervisor = await board.user(Role.SUPERVISOR)
    assert (await log_in(board.client, supervisor.username, PASSWORD)).status == 303
    page = await (await board.client.get("/wallboard")).text()
    assert '<section id="wb-alarms"' in page and 'role="alert"' in page and "系统告警" in page
    strings = _config(page)["strings"]
    assert strings["wallboard.disk.spool"] == "录音缓存盘" and "新通话没有录音" in strings[
        "wallboard.disk_full_effect.spool"]
    english = await (await board.client.get("/wallboard?lang=en")).text()
    assert "System alarms" in english
    assert "nothing is lost" in _config(english)["strings"]["wallboard.disk_full_effect.storage"]


def _config(page: str) -> dict[str, Any]:
    """The page's JSON config block, which carries the strings its script shows."""
    match = re.search(r'<script id="cc-config" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None
    return dict(json.loads(match.group(1)))
