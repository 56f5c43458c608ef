"""Live agent state, kept from AMI queue-member events (app_queue watches each phone's device state).

An agent is *available* only when logged in to a queue, not paused, and their phone is registered and idle:
an unregistered phone reports device state UNAVAILABLE and is never counted as available.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Iterable

from panoramisk.message import Message

from callcenter.db.base import utcnow

MEMBER_EVENTS = ("QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus",
                 "QueueMember")  # the last one answers QueueStatus during a resync


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
    paused: bool = False
    pause_reason: str = ""
    device_state: DeviceState = DeviceState.UNKNOWN
    since: dt.datetime = dataclasses.field(default_factory=utcnow)

    @property
    def logged_in(self) -> bool:
        return bool(self.queues)

    @property
    def registered(self) -> bool:
        return self.device_state not in (DeviceState.UNAVAILABLE, DeviceState.INVALID, DeviceState.UNKNOWN)

    @property
    def available(self) -> bool:
        return self.logged_in and not self.paused and self.device_state is DeviceState.NOT_INUSE

    @property
    def status(self) -> str:
        """One word for panels: offline, unregistered, paused, available, ringing, on_call."""
        if not self.logged_in:
            return "offline"
        if not self.registered:
            return "unregistered"
        if self.paused:
            return "paused"
        if self.device_state is DeviceState.NOT_INUSE:
            return "available"
        if self.device_state in (DeviceState.RINGING, DeviceState.RINGINUSE):
            return "ringing"
        return "on_call"

    def as_dict(self) -> dict[str, object]:
        return {
            "username": self.username, "interface": self.interface, "queues": sorted(self.queues),
            "paused": self.paused, "pause_reason": self.pause_reason or None, "registered": self.registered,
            "device_state": self.device_state.name.lower(), "status": self.status, "available": self.available,
            "since": self.since.isoformat(),
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
        wanted = set(queues) if queues is not None else None
        return [a for a in self.all() if a.available and (wanted is None or a.queues & wanted)]

    def forget_all(self) -> None:
        """Before a resync: everything is re-learned from QueueStatus."""
        for agent in self._agents.values():
            agent.queues.clear()
            self._changed(agent)

    async def handle(self, event: Message) -> None:
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
        else:
            if name in ("QueueMemberAdded", "QueueMember"):
                agent.queues.add(queue)
            if "Paused" in event:
                agent.paused = event.get("Paused") == "1"
                agent.pause_reason = event.get("PausedReason", "") if agent.paused else ""
            status = event.get("Status")
            if status and status.isdigit() and int(status) in DeviceState._value2member_map_:
                agent.device_state = DeviceState(int(status))
        if agent.status != before:
            agent.since = utcnow()
        self._changed(agent)

    def _changed(self, agent: AgentState) -> None:
        for listener in self._listeners:
            listener(agent)
