"""A screen-pop that shows an elder's file is a read of that file: audited (elder.screen_pop) after the pop is
sent, never before — the pop does not wait for a write, even while another writer holds the database."""

from __future__ import annotations

import asyncio
import json
import time

from panoramisk.message import Message
from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call, CallKind, IdentifiedBy
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.desk.http import panel_hub
from callcenter.desk.pop_audit import ScreenPopAudit
from callcenter.desk.screenpop import ScreenPops
from callcenter.elders.models import Elder
from callcenter.users.models import Role, User

ELDER_ID_NUMBER = "11010519491231002X"


async def _world(db: Database) -> tuple[int, int, int]:
    async with db.transaction() as session:
        agent = User(username="agent01", password_hash="x", role=Role.AGENT)
        elder = Elder(full_name="张桂兰", id_number=ELDER_ID_NUMBER, conditions=["高血压"], medications=["氨氯地平"],
                      allergies=["青霉素"])
        session.add_all([agent, elder])
        await session.flush()
        known = Call(linkedid="1765000000.1", kind=CallKind.HOTLINE, elder_id=elder.id,
                     identified_by=IdentifiedBy.CALLER_ID, caller_number="17700000101")
        unknown = Call(linkedid="1765000000.2", kind=CallKind.HOTLINE, caller_number="17700000999")
        session.add_all([known, unknown])
        await session.flush()
        return agent.id, elder.id, known.id


def _connect(linkedid: str) -> Message:
    return Message({"Event": "AgentConnect", "MemberName": "agent01", "Queue": "hotline", "Linkedid": linkedid,
                    "Uniqueid": linkedid, "CallerIDNum": "17700000101", "HoldTime": "1"})


async def _entries(db: Database) -> list[AuditEntry]:
    async with db.transaction(read_only=True) as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "elder.screen_pop")
                                          .order_by(AuditEntry.id)))


async def test_a_pop_of_a_file_is_audited_after_it_is_sent_and_never_waits_for_the_write(db: Database) -> None:
    agent_id, elder_id, call_id = await _world(db)
    hub = panel_hub()
    panel = hub.subscribe("agent01", Role.AGENT, user_id=agent_id, source_ip="10.0.0.7")
    audit = ScreenPopAudit(db)
    pops = ScreenPops(db, hub, audit)
    try:
        # Another writer holds the database's write turn: the pop goes out anyway, its entry waits.
        async with db.transaction() as holder:
            holder.add(AuditEntry(action="test.hold", actor_label="test"))
            await holder.flush()
            started = time.monotonic()
            await pops.handle(_connect("1765000000.1"))
            pop = await asyncio.wait_for(panel.queue.get(), 2)
            assert time.monotonic() - started < 1
            assert pop["elder"]["id"] == elder_id and audit.waiting == 1
        await audit.start()
        # A second panel of the same agent, opened mid-call, gets the pop too: another read, from there.
        late = hub.subscribe("agent01", Role.AGENT, user_id=agent_id, source_ip="10.0.0.8")
        pops.replay(late)
        assert (await asyncio.wait_for(late.queue.get(), 2))["call_id"] == call_id
        # An unknown caller's pop shows no file: nothing to audit.
        await pops.handle(_connect("1765000000.2"))
        assert (await asyncio.wait_for(panel.queue.get(), 2))["elder"] is None
    finally:
        await audit.stop()

    first, replayed = await _entries(db)
    for entry in (first, replayed):
        assert (entry.actor_id, entry.actor_label, entry.target_type, entry.target_id) == (
            agent_id, "agent01", "elder", str(elder_id))
        assert entry.details["justified_by"] == "call" and entry.details["call_id"] == call_id
        assert {"full_name", "conditions", "medications", "contacts"} <= set(entry.details["fields"])
    assert first.source_ip == "10.0.0.7" and "replay" not in first.details
    assert replayed.source_ip == "10.0.0.8" and replayed.details["replay"] is True
    assert first.at <= replayed.at <= utcnow()
    written = json.dumps([first.details, replayed.details], ensure_ascii=False)
    for value in (ELDER_ID_NUMBER, "高血压", "氨氯地平", "青霉素", "张桂兰"):
        assert value not in written


async def test_a_pop_no_panel_received_is_no_read(db: Database) -> None:
    await _world(db)
    audit = ScreenPopAudit(db)
    pops = ScreenPops(db, panel_hub(), audit)  # the agent has no panel open
    await pops.handle(_connect("1765000000.1"))
    assert audit.waiting == 0
