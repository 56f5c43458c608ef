"""The supervisors' wallboard: queues, calls in progress and agents, live.

Two sources, each for what it knows best:

* **Asterisk** (through the one AMI client) for what is happening now: who waits in which queue since when
  (QueueCallerJoin/Leave/Abandon, and ``QueueStatus``'s QueueEntry with its Wait after every AMI (re)login), who
  is talking to which agent (AgentConnect/AgentComplete), which calls still have channels (Newchannel/Hangup,
  and ``CoreShowChannels`` at every login), so a call the log never saw end is not shown as live.
* **The call log** for what is written down: each live call's kind, caller and elder, and today's counts per
  queue (answered within 15 s and 60 s, abandoned), "today" being the centre's local day (``CC_TIMEZONE``).

Event handlers only update dictionaries and set a flag: the AMI event loop never waits for the database. A
publisher task reads the snapshot (read-only transactions) and pushes it over ``/ws`` to supervisors and admins
at most every ``min_interval`` seconds, and only when it changed, so a burst of events becomes one push.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from callcenter import push
from callcenter.agents.state import AgentRegistry, AgentState
from callcenter.calls.events import event_time
from callcenter.calls.models import Call, CallKind
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.models import Elder
from callcenter.health.disk import DiskAlarm, Level
from callcenter.logs import get_logger
from callcenter.telephony.ami import AmiClient, AmiEvent
from callcenter.users.models import Role, User
from callcenter.wallboard.schemas import (
    AlarmOut,
    LiveCallOut,
    QueueOut,
    TodayOut,
    WaitingCallerOut,
    WallboardAgentOut,
    WallboardOut,
)

log = get_logger(__name__)

# The caller queues of asterisk-config/queues.conf.j2, in the order the wallboard shows them.
QUEUES = ("emergency", "hotline", "supervisors")
EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentConnect", "AgentComplete",
          "Newchannel", "Hangup")
# Who is pushed the board: supervisors, and admins (push.roles always adds them).
WATCHERS = push.roles([Role.SUPERVISOR])
# GB/T 33358: answer within 15 s; 60 s is the centre's second mark.
ANSWER_TARGETS = (15, 60)
_SHOWN_KINDS = (CallKind.SOS, CallKind.HOTLINE)


def day_bounds(now: dt.datetime, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """Today, in the centre's time zone: [local midnight, next local midnight), as UTC instants."""
    local = now.astimezone(zone).date()
    start = dt.datetime.combine(local, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(local + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _text(value: str | None) -> str | None:
    return None if not value or value in ("<unknown>", "unknown") else value


# -- live state, from AMI only -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class WaitingCaller:
    queue: str
    uniqueid: str
    linkedid: str
    caller_number: str | None
    caller_name: str | None
    joined_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Talk:
    linkedid: str
    agent: str
    queue: str
    since: dt.datetime
    agent_uniqueid: str


class LiveState:
    """What Asterisk says is happening, kept from events and rebuilt from ``QueueStatus`` + ``CoreShowChannels``.

    Each queue is an ordered list, as in app_queue: a caller is inserted at the Position its join event names
    (an SOS with a higher priority goes ahead) and removed when it leaves, so positions stay Asterisk's.

    A resync must not lose events that are handled while its actions are answered: between ``begin_resync`` and
    ``finish_resync`` every event is also journaled and replayed onto the rebuilt state. Each event sets or removes
    one key, so replaying one the rebuilt state already reflects changes nothing.
    """

    def __init__(self) -> None:
        self._queues: dict[str, list[WaitingCaller]] = {}
        self._talks: dict[str, Talk] = {}  # linkedid → the agent talking to that caller
        self._channels: dict[str, str] = {}  # uniqueid → linkedid, every live channel
        self._journal: list[AmiEvent] | None = None
        self.synced = False  # rebuilt from Asterisk at least once

    # reading
    def waiting(self, queue: str) -> list[WaitingCaller]:
        return list(self._queues.get(queue, ()))

    def waiting_linkedids(self) -> dict[str, tuple[str, dt.datetime]]:
        """linkedid → (queue, joined_at) of every waiting caller (the latest queue if in two)."""
        found: dict[str, tuple[str, dt.datetime]] = {}
        for queue, callers in self._queues.items():
            for caller in callers:
                if caller.linkedid not in found or found[caller.linkedid][1] < caller.joined_at:
                    found[caller.linkedid] = (queue, caller.joined_at)
        return found

    def talks(self) -> dict[str, Talk]:
        return dict(self._talks)

    def live_linkedids(self) -> set[str]:
        return set(self._channels.values())

    # events
    def apply(self, event: AmiEvent) -> bool:
        """Take one AMI event; True if the wallboard may look different."""
        if self._journal is not None:
            self._journal.append(event)
        return self._apply(event, self._queues, self._talks, self._channels)

    @staticmethod
    def _apply(event: AmiEvent, queues: dict[str, list[WaitingCaller]], talks: dict[str, Talk],
               channels: dict[str, str]) -> bool:
        name = event.get("Event", "")
        uniqueid, linkedid = event.get("Uniqueid", ""), event.get("Linkedid", "")
        if not uniqueid:
            return False
        if name == "Newchannel":
            channels[uniqueid] = linkedid or uniqueid
            return True
        if name == "Hangup":
            linkedid = channels.pop(uniqueid, linkedid)
            changed = False
            for talk_linkedid, talk in list(talks.items()):
                if talk.agent_uniqueid == uniqueid:
                    del talks[talk_linkedid]
                    changed = True
            if linkedid and linkedid not in channels.values():
                # The call's last channel: nothing of it can still wait or talk (a missed Leave must not linger).
                changed |= talks.pop(linkedid, None) is not None
                for callers in queues.values():
                    before = len(callers)
                    callers[:] = [c for c in callers if c.linkedid != linkedid]
                    changed |= len(callers) != before
            return True
        queue = event.get("Queue", "")
        if not queue:
            return False
        if name == "QueueCallerJoin":
            callers = queues.setdefault(queue, [])
            if any(c.uniqueid == uniqueid for c in callers):
                return False  # already known (a replayed event)
            caller = WaitingCaller(queue=queue, uniqueid=uniqueid, linkedid=linkedid or uniqueid,
                                   caller_number=_text(event.get("CallerIDNum")),
                                   caller_name=_text(event.get("CallerIDName")), joined_at=event_time(event))
            position = _int(event.get("Position"), len(callers) + 1)
            callers.insert(max(0, min(position - 1, len(callers))), caller)
            return True
        if name in ("QueueCallerLeave", "QueueCallerAbandon"):
            callers = queues.get(queue, [])
            before = len(callers)
            callers[:] = [c for c in callers if c.uniqueid != uniqueid]
            return len(callers) != before
        if name == "AgentConnect":
            talks[linkedid or uniqueid] = Talk(linkedid=linkedid or uniqueid, agent=event.get("MemberName", ""),
                                               queue=queue, since=event_time(event),
                                               agent_uniqueid=event.get("DestUniqueid", ""))
            return True
        if name == "AgentComplete":
            talk = talks.get(linkedid or uniqueid)
            if talk is not None and talk.agent == event.get("MemberName", ""):
                del talks[talk.linkedid]
                return True
        return False

    # resync
    def begin_resync(self) -> None:
        self._journal = []

    def abort_resync(self) -> None:
        self._journal = None

    def finish_resync(self, queue_status: Iterable[AmiEvent], channel_list: Iterable[AmiEvent],
                      now: dt.datetime) -> None:
        """Rebuild from ``QueueStatus`` (QueueEntry: Wait is seconds in the queue) and ``CoreShowChannels``."""
        channels = {m.get("Uniqueid", ""): m.get("Linkedid") or m.get("Uniqueid", "")
                    for m in channel_list if m.get("Event") == "CoreShowChannel" and m.get("Uniqueid")}
        entries = sorted((m for m in queue_status if m.get("Event") == "QueueEntry" and m.get("Uniqueid")),
                         key=lambda m: (m.get("Queue", ""), _int(m.get("Position"))))
        queues: dict[str, list[WaitingCaller]] = {}
        for entry in entries:
            uniqueid = entry.get("Uniqueid", "")
            queues.setdefault(entry.get("Queue", ""), []).append(WaitingCaller(
                queue=entry.get("Queue", ""), uniqueid=uniqueid, linkedid=channels.get(uniqueid, uniqueid),
                caller_number=_text(entry.get("CallerIDNum")), caller_name=_text(entry.get("CallerIDName")),
                joined_at=now - dt.timedelta(seconds=_int(entry.get("Wait")))))
        # Talks known from AgentConnect survive only while both sides are still up; the rest come from the log.
        live = set(channels.values())
        talks = {linkedid: talk for linkedid, talk in self._talks.items()
                 if linkedid in live and talk.agent_uniqueid in channels}
        for event in self._journal or ():
            self._apply(event, queues, talks, channels)
        self._queues, self._talks, self._channels = queues, talks, channels
        self._journal = None
        self.synced = True


# -- the call log's side (read-only) -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class LoggedCall:
    id: int
    linkedid: str
    kind: CallKind
    caller_number: str | None
    caller_name: str | None
    elder_name: str | None
    started_at: dt.datetime
    answered_at: dt.datetime | None
    queue: str | None
    agent: str | None


async def calls_in_progress(session: AsyncSession, linkedids: Iterable[str]) -> dict[str, LoggedCall]:
    """The call log's rows of these calls, those it has not seen end."""
    wanted = sorted(set(linkedids))
    found: dict[str, LoggedCall] = {}
    agent = aliased(User)
    for start in range(0, len(wanted), 500):
        rows = await session.execute(
            select(Call.id, Call.linkedid, Call.kind, Call.caller_number, Call.caller_name, Elder.full_name,
                   Call.started_at, Call.answered_at, Call.queue, agent.username)
            .outerjoin(Elder, Elder.id == Call.elder_id).outerjoin(agent, agent.id == Call.agent_id)
            .where(Call.linkedid.in_(wanted[start:start + 500]), Call.ended_at.is_(None)))
        for row in rows:
            found[row[1]] = LoggedCall(*row)
    return found


async def today_by_queue(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> dict[str, TodayOut]:
    """Per queue, the calls that started in [start, end): offered, answered (within 15 s, 60 s), abandoned."""
    answered = Call.answered_at.is_not(None)

    def counted(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    rows = await session.execute(
        select(Call.queue, func.count(), counted(answered),
               *(counted(answered & (Call.queue_wait_seconds <= seconds)) for seconds in ANSWER_TARGETS),
               counted(Call.ended_at.is_not(None) & Call.answered_at.is_(None)))
        .where(Call.started_at >= start, Call.started_at < end, Call.queue.in_(QUEUES))
        .group_by(Call.queue))
    today = {queue: TodayOut(offered=0, answered=0, answered_within_15s=0, answered_within_60s=0, abandoned=0)
             for queue in QUEUES}
    for queue, offered, answered_count, within_15, within_60, abandoned in rows:
        today[queue] = TodayOut(offered=offered, answered=answered_count, answered_within_15s=within_15,
                                answered_within_60s=within_60, abandoned=abandoned)
    return today


# -- alarms (callcenter.health.disk) ----------------------------------------------------------------------------
class AlarmSource(Protocol):
    def alarms(self) -> list[DiskAlarm]: ...

    def on_change(self, listener: Callable[[], Awaitable[None] | None]) -> None: ...


_SEVERITY = {Level.LOW: "warning", Level.FULL: "critical", Level.UNKNOWN: "critical"}


def alarm_out(alarm: DiskAlarm) -> AlarmOut:
    return AlarmOut(code=f"disk_{alarm.level.value}", part=alarm.part, severity=_SEVERITY[alarm.level],
                    since=alarm.since, free_mb=alarm.free_mb, min_free_mb=alarm.min_free_mb)


# -- the snapshot and its publisher ------------------------------------------------------------------------------
# Free space moves with every second of audio written: a push for that alone would be noise (levels still push).
_VOLATILE = frozenset({"generated_at", "wait_seconds", "longest_wait_seconds", "free_mb"})


def _stable(value: Any) -> Any:
    """The snapshot without what only the clock changes: two snapshots with the same key show the same board."""
    if isinstance(value, Mapping):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _seconds(since: dt.datetime, now: dt.datetime) -> int:
    return max(0, int((now - since).total_seconds()))


class WallboardService:
    def __init__(self, db: Database, ami: AmiClient, registry: AgentRegistry, *, timezone: str,
                 min_interval: float = 0.5, settle: float = 1.0, refresh: float = 30.0) -> None:
        self._db = db
        self._ami = ami
        self._registry = registry
        self.timezone = timezone
        self._zone = zoneinfo.ZoneInfo(timezone)
        self.live = LiveState()
        self._hub: push.Fanout | None = None
        self._min_interval = min_interval  # at most one push per this many seconds
        self._settle = settle  # one more look after a burst: the call log is written by another subscriber
        self._refresh = refresh  # and one now and then: local midnight, facts the AGI wrote with no AMI event
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_lock = asyncio.Lock()
        self._last_pushed: Any = None  # the last pushed snapshot, without its clock fields
        self._alarm_sources: list[AlarmSource] = []
        ami.on_login(self.resync)
        registry.on_change(self._agent_changed)

    # wiring
    def publish_to(self, hub: push.Fanout) -> None:
        self._hub = hub

    def show_alarms(self, source: AlarmSource) -> None:
        """Show ``source``'s alarms on the board; a change of them is pushed like any other change."""
        self._alarm_sources.append(source)
        source.on_change(self.changed)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._publisher(), name="wallboard-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # inputs: cheap, never waiting
    def changed(self) -> None:
        self._wake.set()

    def _agent_changed(self, _agent: AgentState) -> None:
        self.changed()

    async def handle(self, event: AmiEvent) -> None:
        if self.live.apply(event):
            self.changed()

    async def call_ended(self, _call: Call) -> None:
        """The call log closed a call (committed): today's counts moved."""
        self.changed()

    async def resync(self) -> None:
        """After every AMI (re)login: waiting callers (with Asterisk's Wait) and live channels, afresh."""
        async with self._resync_lock:
            self.live.begin_resync()
            try:
                status = await self._ami.send_action({"Action": "QueueStatus"}, timeout=15)
                answered_at = utcnow()  # QueueEntry's Wait is counted up to this moment
                channels = await self._ami.send_action({"Action": "CoreShowChannels"}, timeout=15)
            except BaseException:
                self.live.abort_resync()
                raise
            status_list = status if isinstance(status, list) else [status]
            channel_list = channels if isinstance(channels, list) else [channels]
            self.live.finish_resync(status_list, channel_list, answered_at)
        log.info("wallboard.resynced", waiting=sum(len(self.live.waiting(q)) for q in QUEUES),
                 live_calls=len(self.live.live_linkedids()))
        self.changed()

    # the snapshot
    async def snapshot(self, now: dt.datetime | None = None) -> WallboardOut:
        now = now or utcnow()
        # The live part is copied before the first await, so it is one consistent moment.
        waiting = {queue: self.live.waiting(queue) for queue in QUEUES}
        waiting_calls = self.live.waiting_linkedids()
        talks = self.live.talks()
        live = self.live.live_linkedids() | set(waiting_calls) | set(talks)
        agents = [(a.username, a.status, a.since, sorted(a.queues), a.pause_reason or None)
                  for a in self._registry.all()]
        alarms = sorted((alarm_out(a) for source in self._alarm_sources for a in source.alarms()),
                        key=lambda a: (a.severity != "critical", a.since, a.part))
        logged_in = {q: sum(1 for a in self._registry.all() if q in a.queues) for q in QUEUES}
        available = {q: len(self._registry.available([q])) for q in QUEUES}
        day_start, day_end = day_bounds(now, self._zone)
        async with self._db.transaction(read_only=True) as session:
            logged = await calls_in_progress(session, live)
            today = await today_by_queue(session, day_start, day_end)

        calls: list[LiveCallOut] = []
        for linkedid, call in logged.items():
            talk = talks.get(linkedid)
            if call.kind not in _SHOWN_KINDS and linkedid not in waiting_calls and talk is None:
                continue  # conference parties, spy lines, callbacks: not caller traffic
            if linkedid in waiting_calls:
                queue, since = waiting_calls[linkedid]
                state, agent = "waiting", None
            elif talk is not None:
                state, queue, since, agent = "talking", talk.queue, talk.since, talk.agent
            elif call.answered_at is not None:  # answered, and the log knows by whom (after a resync, too)
                state, queue, since, agent = "talking", call.queue, call.answered_at, call.agent
            else:
                state, queue, since, agent = "connecting", call.queue, call.started_at, None
            calls.append(LiveCallOut(
                linkedid=linkedid, call_id=call.id, kind=call.kind.value, sos=call.kind is CallKind.SOS,
                caller_number=call.caller_number, caller_name=call.caller_name, elder_name=call.elder_name,
                started_at=call.started_at, state=state, state_since=since, queue=queue, agent=agent))
        calls.sort(key=lambda c: (not c.sos, c.started_at, c.call_id))

        queues = []
        for queue in QUEUES:
            callers = [WaitingCallerOut(
                linkedid=c.linkedid, call_id=logged[c.linkedid].id if c.linkedid in logged else None,
                sos=c.linkedid in logged and logged[c.linkedid].kind is CallKind.SOS, position=index,
                caller_number=c.caller_number, caller_name=c.caller_name,
                elder_name=logged[c.linkedid].elder_name if c.linkedid in logged else None,
                joined_at=c.joined_at, wait_seconds=_seconds(c.joined_at, now))
                for index, c in enumerate(waiting[queue], start=1)]
            longest = min((c.joined_at for c in callers), default=None)
            queues.append(QueueOut(
                name=queue, waiting=len(callers), longest_wait_since=longest,
                longest_wait_seconds=_seconds(longest, now) if longest else None, callers=callers,
                agents_logged_in=logged_in[queue], agents_available=available[queue], today=today[queue]))

        # An agent's current call: the one Asterisk connected them to; else (after a restart, in a conference) the
        # one the log says they answered, if their phone is busy — a conference the agent left goes on without them.
        busy = {username for username, status, *_ in agents if status == "on_call"}
        on_call = {c.agent: c for c in calls if c.agent and c.linkedid in talks}
        for c in calls:
            if c.state == "talking" and c.agent in busy:
                on_call.setdefault(c.agent, c)
        return WallboardOut(
            generated_at=now, timezone=self.timezone, day_start=day_start, ami_connected=self._ami.connected,
            calls=calls, queues=queues,
            agents=[WallboardAgentOut(
                username=username, status=status, since=since, queues=queues_of, pause_reason=reason,
                call_id=on_call[username].call_id if username in on_call else None,
                sos=username in on_call and on_call[username].sos)
                for username, status, since, queues_of, reason in agents],
            alarms=alarms)

    # the publisher
    async def publish(self) -> bool:
        """Push the snapshot to supervisors and admins if it differs from the last one pushed."""
        if self._hub is None or not self._hub.watching(WATCHERS):
            self._last_pushed = None  # nobody saw the last one: the next watcher's first change is pushed
            return False
        payload = (await self.snapshot()).model_dump(mode="json")
        stable = _stable(payload)
        if stable == self._last_pushed:
            return False
        self._last_pushed = stable
        # One Frame for every supervisor's connection: its JSON is encoded once, however many are watching.
        self._hub.publish(WATCHERS, push.Frame(type="wallboard", **payload))
        return True

    async def _publisher(self) -> None:
        loop = asyncio.get_running_loop()
        settle_at: float | None = None
        while True:
            timeout = self._refresh if settle_at is None else max(0.0, settle_at - loop.time())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
                settle_at = loop.time() + self._settle
            except TimeoutError:
                settle_at = None
            self._wake.clear()
            pause = self._min_interval
            try:
                await self.publish()
            except Exception:
                log.exception("wallboard.publish_failed")
                pause = max(pause, 2.0)  # the database is away: try again soon, without a log line per event
                self._wake.set()
            # Whatever happens meanwhile is coalesced into the next push.
            await asyncio.sleep(pause)
