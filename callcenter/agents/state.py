"""Live agent state, kept from AMI queue-member events (app_queue watches each phone's device state).

An agent is *available* only when logged in to a queue, not paused, and their phone is registered and idle:
an unregistered phone reports device state UNAVAILABLE and is never counted as available.

Pauses are per queue in Asterisk. A personal pause (break, meal…) pauses every queue; wrap-up after a call pauses
only the queues in ``WRAPUP_QUEUES`` with the reason ``WRAPUP_REASON``, so an agent writing up a call still takes
an SOS.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Iterable

from aiohttp import web

from callcenter.db.base import utcnow
from callcenter.telephony.ami import AmiEvent

MEMBER_EVENTS = ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus",
                 "QueueMember")  # the last one answers QueueStatus during a resync
WRAPUP_REASON = "wrap-up"
WRAPUP_QUEUES = ("hotline",)  # never the emergency queues: a life outranks paperwork


class DeviceState(enum.IntEnum):
    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


@dataclasses.dataclass
class AgentState:
    username: str
    interface: str
    queues: set[str] = dataclasses.field(default_factory=set)
    paused_in: dict[str, str] = dataclasses.field(default_factory=dict)  # queue → pause reason ("" if none)
    last_pause_at: dt.datetime | None = None  # Asterisk's LastPause: when the latest pause began
    device_state: DeviceState = DeviceState.UNKNOWN
    since: dt.datetime = dataclasses.field(default_factory=utcnow)
    wrap_up_until: dt.datetime | None = None  # set by the agent service while a wrap-up runs

    @property
    def logged_in(self) -> bool:
        return bool(self.queues)

    @property
    def paused(self) -> bool:
        """A personal pause: every queue of the agent is paused, and not for wrap-up."""
        return self.logged_in and self.queues <= self.paused_in.keys() and not self.wrap_up

    @property
    def pause_reason(self) -> str:
        reasons = [reason for reason in self.paused_in.values() if reason]
        return next((r for r in reasons if r != WRAPUP_REASON), reasons[0] if reasons else "")

    @property
    def wrap_up(self) -> bool:
        return any(reason == WRAPUP_REASON for reason in self.paused_in.values())

    def available_in(self, queue: str) -> bool:
        return queue in self.queues and queue not in self.paused_in and self.device_state is DeviceState.NOT_INUSE

    @property
    def registered(self) -> bool:
        return self.device_state not in (DeviceState.UNAVAILABLE, DeviceState.INVALID, DeviceState.UNKNOWN)

    @property
    def available(self) -> bool:
        """Free to take a call from at least one of their queues."""
        return any(self.available_in(queue) for queue in self.queues)

    @property
    def status(self) -> str:
        """One word for panels: offline, unregistered, paused, wrap_up, available, ringing, on_call."""
        if not self.logged_in:
            return "offline"
        if not self.registered:
            return "unregistered"
        if self.paused:
            return "paused"
        if self.device_state is DeviceState.NOT_INUSE:
            return "wrap_up" if self.wrap_up else "available"
        if self.device_state in (DeviceState.RINGING, DeviceState.RINGINUSE):
            return "ringing"
        return "on_call"

    def as_dict(self) -> dict[str, object]:
        return {
            "username": self.username, "interface": self.interface, "queues": sorted(self.queues),
            "paused": self.paused, "pause_reason": self.pause_reason or None, "registered": self.registered,
            "device_state": self.device_state.name.lower(), "status": self.status, "available": self.available,
            "since": self.since.isoformat(), "wrap_up": self.wrap_up,
            "wrap_up_until": self.wrap_up_until.isoformat() if self.wrap_up and self.wrap_up_until else None,
        }


Listener = Callable[[AgentState], None]


class AgentRegistry:
    """The platform's one view of who is logged in where; fed only by AMI events (the truth is Asterisk's)."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentState] = {}
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def get(self, username: str) -> AgentState | None:
        return self._agents.get(username)

    def all(self) -> list[AgentState]:
        return sorted(self._agents.values(), key=lambda a: a.username)

    def available(self, queues: Iterable[str] | None = None) -> list[AgentState]:
        if queues is None:
            return [a for a in self.all() if a.available]
        wanted = tuple(queues)
        return [a for a in self.all() if any(a.available_in(queue) for queue in wanted)]

    def forget_all(self) -> None:
        """Before a resync: everything is re-learned from QueueStatus."""
        for agent in self._agents.values():
            agent.queues.clear()
            agent.paused_in.clear()
            self._changed(agent)

    async def handle(self, event: AmiEvent) -> None:
        name = event.get("Event", "")
        username = event.get("MemberName") or event.get("Name") or ""
        interface = event.get("Interface") or event.get("Location") or ""
        queue = event.get("Queue", "")
        if not username or not interface:
            return
        agent = self._agents.setdefault(username, AgentState(username=username, interface=interface))
        agent.interface = interface
        before = agent.status
        if name == "QueueMemberRemoved":
            agent.queues.discard(queue)
            agent.paused_in.pop(queue, None)
        else:
            if name in ("QueueMemberAdded", "QueueMember"):
                agent.queues.add(queue)
            if "Paused" in event and queue:
                if event.get("Paused") == "1":
                    agent.paused_in[queue] = event.get("PausedReason", "")
                else:
                    agent.paused_in.pop(queue, None)
            last_pause = event.get("LastPause", "")
            if last_pause.isdigit() and int(last_pause) > 0:
                agent.last_pause_at = dt.datetime.fromtimestamp(int(last_pause), dt.UTC)
            status = event.get("Status")
            if status and status.isdigit() and int(status) in DeviceState._value2member_map_:
                agent.device_state = DeviceState(int(status))
        if agent.status != before:
            agent.since = utcnow()
        self._changed(agent)

    def touch(self, agent: AgentState) -> None:
        """Tell listeners about a change the platform made to an agent (the wrap-up's end time)."""
        self._changed(agent)

    def _changed(self, agent: AgentState) -> None:
        for listener in self._listeners:
            listener(agent)

# Queue members and their state as AMI reports them; the wallboard, callbacks and the desk read it.
AGENT_REGISTRY = web.AppKey("agent_registry", AgentRegistry)
