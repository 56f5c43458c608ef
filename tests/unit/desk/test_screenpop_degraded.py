"""A screen-pop still reaches the agent when the database cannot be reached: what AMI says of the call, marked
degraded, within moments — never nothing."""

from __future__ import annotations

import asyncio
import time

from panoramisk.message import Message

from callcenter.db.session import Database
from callcenter.desk.http import panel_hub
from callcenter.desk.pop_audit import ScreenPopAudit
from callcenter.desk.screenpop import ScreenPops
from callcenter.users.models import Role
from tests.harness import free_tcp_port


async def test_an_sos_answered_while_the_database_is_down_still_pops_what_ami_knows() -> None:
    # A PostgreSQL address where nothing listens: every connection is refused, as with the server stopped.
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_tcp_port()}/callcenter")
    hub = panel_hub()
    panel = hub.subscribe("agent01", Role.AGENT)
    pops = ScreenPops(db, hub, ScreenPopAudit(db))
    try:
        started = time.monotonic()
        await pops.handle(Message({"Event": "AgentConnect", "MemberName": "agent01", "Queue": "emergency",
                                   "Linkedid": "1765000000.21", "Uniqueid": "1765000000.21",
                                   "CallerIDNum": "17700000001", "HoldTime": "1"}))
        pop = await asyncio.wait_for(panel.queue.get(), 5)
        assert time.monotonic() - started < 3
    finally:
        await db.dispose()
    assert pop["type"] == "screen_pop" and pop["degraded"] is True
    assert pop["sos"] is True and pop["caller_number"] == "17700000001" and pop["agent"] == "agent01"
    assert pop["elder"] is None and pop["call_id"] is None
