"""Today's counts from the call log (the centre's local day; 15 s and 60 s; abandoned) and the snapshot that joins
them with the live state, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from panoramisk.message import Message

from callcenter.agents.state import AgentRegistry
from callcenter.calls.models import Call, CallKind, Disposition
from callcenter.db.session import Database
from callcenter.elders.models import Elder
from callcenter.telephony.ami import AmiClient
from callcenter.users.models import Role, User
from callcenter.wallboard.services import WallboardService, day_bounds, today_by_queue
from tests.harness import free_tcp_port

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
# 00:30 on 10 March in Shanghai is still 9 March in UTC: a UTC "today" would be wrong for half the night.
NOW = dt.datetime(2026, 3, 10, 0, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
_serial = iter(range(1, 10_000))


def _local(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(dt.UTC)


def _call(started_at: dt.datetime, queue: str | None, *, wait: float | None = None, answered: bool = False,
          ended: bool = True, kind: CallKind = CallKind.HOTLINE, linkedid: str | None = None, **extra: object) -> Call:
    answered_at = started_at + dt.timedelta(seconds=(wait or 0) + 5) if answered else None
    return Call(linkedid=linkedid or f"1773000000.{next(_serial)}", kind=kind, queue=queue, started_at=started_at,
                queue_wait_seconds=wait if answered else None, answered_at=answered_at,
                ended_at=started_at + dt.timedelta(minutes=3) if ended else None,
                disposition=(Disposition.ANSWERED if answered else Disposition.ABANDONED) if ended
                else Disposition.IN_PROGRESS, **extra)


def test_the_day_is_the_centres_local_day() -> None:
    start, end = day_bounds(NOW, SHANGHAI)
    assert (start, end) == (dt.datetime(2026, 3, 9, 16, tzinfo=dt.UTC), dt.datetime(2026, 3, 10, 16, tzinfo=dt.UTC))
    assert day_bounds(NOW, zoneinfo.ZoneInfo("UTC"))[0] == dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    # A day with a clock change is 23 hours long, and still starts at local midnight.
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    start, end = day_bounds(dt.datetime(2026, 3, 29, 12, tzinfo=berlin), berlin)
    assert (end - start) == dt.timedelta(hours=23) and start.astimezone(berlin).hour == 0


async def test_todays_counts_per_queue_by_local_day_answer_time_and_abandonment(db: Database) -> None:
    async with db.transaction() as session:
        session.add_all([
            # Yesterday, local time (even though it is "today" in UTC for some of them): never counted.
            _call(_local(9, 23, 59, 59), "hotline", wait=3, answered=True),
            _call(_local(9, 18, 0), "hotline"),
            # Today, from the first second of local midnight.
            _call(_local(10, 0, 0, 0), "hotline", wait=15.0, answered=True),  # within 15 s (the bound is kept)
            _call(_local(10, 0, 5), "hotline", wait=15.5, answered=True),  # within 60 s only
            _call(_local(10, 0, 6), "hotline", wait=60.0, answered=True),  # within 60 s
            _call(_local(10, 0, 7), "hotline", wait=61, answered=True),  # answered, but late
            _call(_local(10, 0, 8), "hotline"),  # abandoned
            _call(_local(10, 0, 9), "hotline", ended=False),  # still waiting: offered, not abandoned
            _call(_local(10, 0, 10), "emergency", kind=CallKind.SOS, wait=4, answered=True),
            _call(_local(10, 0, 11), "emergency", kind=CallKind.SOS),  # an abandoned SOS
            _call(_local(10, 0, 12), "supervisors", kind=CallKind.SOS, wait=8, answered=True),  # overflow answered
            _call(_local(10, 0, 13), None),  # never queued (a menu call-back request): no queue's figure
            _call(_local(10, 23, 59, 59), "hotline", wait=1, answered=True),  # the last second of today
            _call(_local(11, 0, 0), "hotline", wait=1, answered=True),  # tomorrow
        ])
    start, end = day_bounds(NOW, SHANGHAI)
    async with db.transaction(read_only=True) as session:
        today = await today_by_queue(session, start, end)
    hotline = today["hotline"]
    assert (hotline.offered, hotline.answered, hotline.answered_within_15s, hotline.answered_within_60s,
            hotline.abandoned) == (7, 5, 2, 4, 1)
    emergency = today["emergency"]
    assert (emergency.offered, emergency.answered, emergency.answered_within_15s, emergency.abandoned) == (2, 1, 1, 1)
    assert (today["supervisors"].answered_within_15s, today["supervisors"].offered) == (1, 1)
    # The same rows seen from a UTC day: the centre's 00:00-08:00 calls fall into another day.
    async with db.transaction(read_only=True) as session:
        utc_today = await today_by_queue(session, *day_bounds(NOW, zoneinfo.ZoneInfo("UTC")))
    assert utc_today["hotline"].offered == 8  # 9 March 18:00 local onwards, and nothing after 08:00 local on the 10th


def _event(name: str, uniqueid: str, *, at: dt.datetime, linkedid: str | None = None, **fields: str) -> Message:
    return Message({"Event": name, "Uniqueid": uniqueid, "Linkedid": linkedid or uniqueid,
                    "Timestamp": f"{at.timestamp():.6f}", **fields})


async def test_the_snapshot_joins_asterisks_live_state_with_the_call_log(db: Database) -> None:
    async with db.transaction() as session:
        elder = Elder(full_name="测试老人")
        agent = User(username="agent-w", role=Role.AGENT, password_hash="x")
        session.add_all([elder, agent])
        await session.flush()
        session.add_all([
            _call(_local(10, 0, 20), None, ended=False, linkedid="5.0001"),  # hotline caller, waiting
            _call(_local(10, 0, 25), None, ended=False, kind=CallKind.SOS, linkedid="5.0002", elder_id=elder.id,
                  caller_number="17700009903"),  # SOS, talking to agent-w
            _call(_local(10, 0, 1), None, ended=False, linkedid="5.0003"),  # in the menu
            _call(_local(9, 10, 0), "hotline", ended=False, linkedid="5.0004"),  # never seen to end; not live
            _call(_local(10, 0, 2), None, ended=False, kind=CallKind.OTHER, linkedid="5.0005"),  # a spy line
            _call(_local(10, 0, 3), "hotline", ended=False, linkedid="5.0006", answered=True, wait=2,
                  agent_id=agent.id),  # answered, then moved to a conference: the log knows the agent
        ])
    registry = AgentRegistry()
    for name, interface, queue, device_state in (("agent-w", "PJSIP/8001", "emergency", "2"),
                                                 ("agent-w", "PJSIP/8001", "hotline", "2"),
                                                 ("agent-x", "PJSIP/8002", "hotline", "1")):
        await registry.handle(Message({"Event": "QueueMemberAdded", "Queue": queue, "MemberName": name,
                                       "Interface": interface, "Paused": "0", "Status": device_state}))
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")  # never started
    wallboard = WallboardService(db, ami, registry, timezone="Asia/Shanghai")
    for uniqueid, linkedid in (("5.0001", "5.0001"), ("5.0002", "5.0002"), ("5.0012", "5.0002"),
                               ("5.0003", "5.0003"), ("5.0005", "5.0005"), ("5.0006", "5.0006")):
        await wallboard.handle(_event("Newchannel", uniqueid, linkedid=linkedid, at=NOW))
    await wallboard.handle(_event("QueueCallerJoin", "5.0001", at=NOW - dt.timedelta(seconds=42), Queue="hotline",
                                  Position="1", CallerIDNum="17700001111"))
    await wallboard.handle(_event("QueueCallerJoin", "5.0002", at=NOW - dt.timedelta(seconds=9), Queue="emergency",
                                  Position="1"))
    await wallboard.handle(_event("QueueCallerLeave", "5.0002", at=NOW - dt.timedelta(seconds=3), Queue="emergency"))
    await wallboard.handle(_event("AgentConnect", "5.0002", at=NOW - dt.timedelta(seconds=3), Queue="emergency",
                                  MemberName="agent-w", DestUniqueid="5.0012", HoldTime="6"))

    board = await wallboard.snapshot(NOW)
    assert board.timezone == "Asia/Shanghai" and board.day_start == dt.datetime(2026, 3, 9, 16, tzinfo=dt.UTC)
    assert board.ami_connected is False
    calls = [(c.linkedid, c.state, c.queue, c.agent) for c in board.calls]
    assert calls == [("5.0002", "talking", "emergency", "agent-w"),  # SOS first
                     ("5.0003", "connecting", None, None), ("5.0006", "talking", "hotline", "agent-w"),
                     ("5.0001", "waiting", "hotline", None)]  # then the oldest first
    sos = board.calls[0]
    assert sos.sos and sos.elder_name == "测试老人" and sos.state_since == NOW - dt.timedelta(seconds=3)
    hotline = next(q for q in board.queues if q.name == "hotline")
    assert hotline.waiting == 1 and hotline.longest_wait_seconds == 42
    assert hotline.longest_wait_since == NOW - dt.timedelta(seconds=42)
    caller = hotline.callers[0]
    assert (caller.position, caller.caller_number, caller.wait_seconds, caller.call_id is not None) == (
        1, "17700001111", 42, True)
    assert [q.name for q in board.queues] == ["emergency", "hotline", "supervisors"]
    emergency = next(q for q in board.queues if q.name == "emergency")
    assert (emergency.waiting, emergency.agents_logged_in, emergency.agents_available) == (0, 1, 0)
    assert (hotline.agents_logged_in, hotline.agents_available) == (2, 1)
    agents = {a.username: a for a in board.agents}
    # agent-w answered 5.0006 earlier (the log says so) but Asterisk connected them to the SOS now.
    assert (agents["agent-w"].status, agents["agent-w"].call_id, agents["agent-w"].sos) == (
        "on_call", sos.call_id, True)
    assert (agents["agent-x"].status, agents["agent-x"].call_id, agents["agent-x"].queues) == ("available", None,
                                                                                               ["hotline"])
    # Asterisk's clock moves the wait on; nothing else changes.
    later = await wallboard.snapshot(NOW + dt.timedelta(seconds=10))
    assert next(q for q in later.queues if q.name == "hotline").callers[0].wait_seconds == 52
