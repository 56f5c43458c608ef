"""GET /api/v1/wallboard (supervisors and admins only) and the coalesced ``wallboard`` push on the panel hub."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

from panoramisk.message import Message

from callcenter.agents.state import AgentRegistry
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.desk.http import panel_hub
from callcenter.push import Frame
from callcenter.telephony.ami import AmiClient
from callcenter.users.models import Role
from callcenter.wallboard.services import WallboardService
from tests.apiclient import Api
from tests.harness import free_tcp_port


async def test_supervisors_and_admins_read_the_wallboard_others_may_not(board_api: tuple[Api, WallboardService],
                                                                         api: Api) -> None:
    board, wallboard = board_api
    await wallboard.handle(Message({"Event": "QueueCallerJoin", "Uniqueid": "7.1", "Linkedid": "7.1",
                                    "Queue": "hotline", "Position": "1", "CallerIDNum": "17700001234",
                                    "Timestamp": f"{time.time() - 30:.6f}"}))
    for role in (Role.SUPERVISOR, Role.ADMIN):
        status, body = await board.request("GET", "/api/v1/wallboard", role=role)
        assert status == 200, body
        hotline = next(q for q in body["queues"] if q["name"] == "hotline")
        assert hotline["waiting"] == 1 and 29 <= hotline["longest_wait_seconds"] <= 40
        assert hotline["callers"][0]["caller_number"] == "17700001234"
        assert body["timezone"] == "Asia/Shanghai" and body["ami_connected"] is False
    for role in (Role.AGENT, Role.AUDITOR, Role.PROVIDER):
        status, body = await board.request("GET", "/api/v1/wallboard", role=role)
        assert status == 403 and body["error"]["code"] == "forbidden", (role, body)
    assert (await board.request("GET", "/api/v1/wallboard", role=None))[0] == 401


async def test_pushes_are_coalesced_and_only_sent_when_the_board_changed(db: Database) -> None:
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started
    wallboard = WallboardService(db, ami, AgentRegistry(), timezone="Asia/Shanghai", min_interval=0.2, settle=0.3,
                                 refresh=30)
    hub = panel_hub()
    wallboard.publish_to(hub)
    reads = 0
    real_snapshot = wallboard.snapshot

    async def counting_snapshot(now: dt.datetime | None = None) -> object:
        nonlocal reads
        reads += 1
        return await real_snapshot(now)

    wallboard.snapshot = counting_snapshot  # type: ignore[method-assign]
    await wallboard.start()
    try:
        # Nobody watching: events cost no database read.
        for index in range(20):
            await wallboard.handle(Message({"Event": "Newchannel", "Uniqueid": f"8.{index}", "Linkedid": "8.0"}))
        await asyncio.sleep(0.5)
        assert reads == 0
        supervisor = hub.subscribe("sup", Role.SUPERVISOR)
        agent = hub.subscribe("agent", Role.AGENT)
        started = time.monotonic()
        # A burst: 200 callers join over ~1 s.
        for index in range(200):
            await wallboard.handle(Message({"Event": "QueueCallerJoin", "Uniqueid": f"9.{index}",
                                            "Linkedid": f"9.{index}", "Queue": "hotline",
                                            "Position": str(index + 1), "Timestamp": f"{time.time():.6f}"}))
            if index % 20 == 0:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        elapsed = time.monotonic() - started
        pushed = []
        while not supervisor.queue.empty():
            pushed.append(supervisor.queue.get_nowait())
        assert all(message["type"] == "wallboard" for message in pushed)
        assert 1 <= len(pushed) <= elapsed / 0.2 + 2, len(pushed)
        assert next(q for q in pushed[-1]["queues"] if q["name"] == "hotline")["waiting"] == 200
        assert agent.queue.empty()  # agents get no wallboard
        # Nothing changed: the settle look and the next wake-up push nothing.
        wallboard.changed()
        await asyncio.sleep(0.8)
        assert supervisor.queue.empty()
        # An admin sees the board too: the same frame, encoded to JSON once for both.
        admin = hub.subscribe("admin", Role.ADMIN)
        await wallboard.handle(Message({"Event": "QueueCallerLeave", "Uniqueid": "9.0", "Queue": "hotline"}))
        message = await asyncio.wait_for(admin.queue.get(), 3)
        assert next(q for q in message["queues"] if q["name"] == "hotline")["waiting"] == 199
        assert isinstance(message, Frame) and supervisor.queue.get_nowait() is message
        assert json.loads(message.text) == message and message.text is message.text
        assert dt.datetime.fromisoformat(message["generated_at"]) <= utcnow()
    finally:
        await wallboard.stop()
