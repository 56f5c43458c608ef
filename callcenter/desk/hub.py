"""Fan-out of panel messages to browsers, each through its own bounded queue.

A browser that stops reading (a frozen tab, a dead network) fills only its own queue; when it is full the
client is dropped — its socket closed so the panel reconnects and receives the current state again — and no
other browser ever waits for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

from callcenter.agents.state import AgentState
from callcenter.logs import get_logger
from callcenter.users.models import Role

log = get_logger(__name__)

Message = dict[str, Any]


class Frame(dict[str, Any]):
    """A message for many browsers (a wallboard snapshot to every supervisor): its JSON is made once, by the first
    connection that sends it, and reused by the others."""

    @functools.cached_property
    def text(self) -> str:
        return json.dumps(self)


@dataclasses.dataclass(eq=False)
class PanelClient:
    username: str
    role: Role
    queue: asyncio.Queue[Message]
    dropped: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class PanelHub:
    """Who is connected, and delivery to them. Agent-state changes go to the agent and to supervisors."""

    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._clients: set[PanelClient] = set()

    def connect(self, username: str, role: Role) -> PanelClient:
        client = PanelClient(username, role, asyncio.Queue(self._queue_size))
        self._clients.add(client)
        return client

    def disconnect(self, client: PanelClient) -> None:
        self._clients.discard(client)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def watching(self, roles: Iterable[Role]) -> bool:
        """Someone who would receive ``to_roles(roles, …)`` is connected: work for nobody can be skipped."""
        wanted = set(roles) | {Role.ADMIN}
        return any(c.role in wanted and not c.dropped.is_set() for c in self._clients)

    def to_client(self, client: PanelClient, message: Message) -> int:
        return self._offer([client], message)

    def to_user(self, username: str, message: Message) -> int:
        return self._offer((c for c in self._clients if c.username == username), message)

    def to_roles(self, roles: Iterable[Role], message: Message) -> int:
        wanted = set(roles) | {Role.ADMIN}
        return self._offer((c for c in self._clients if c.role in wanted), message)

    def _offer(self, clients: Iterable[PanelClient], message: Message) -> int:
        delivered = 0
        for client in list(clients):
            if client.dropped.is_set():
                continue
            try:
                client.queue.put_nowait(message)
                delivered += 1
            except asyncio.QueueFull:
                log.warning("desk.client_dropped", username=client.username, reason="queue full",
                            queue_size=self._queue_size)
                client.dropped.set()
                self._clients.discard(client)
        return delivered


def publish_agent_state(hub: PanelHub) -> Callable[[AgentState], None]:
    """An AgentRegistry listener: every state change reaches the agent's own panel and the supervisors'."""

    def publish(agent: AgentState) -> None:
        message = {"type": "agent_state", **agent.as_dict()}
        hub.to_user(agent.username, message)
        hub.to_roles([Role.SUPERVISOR], message)

    return publish
