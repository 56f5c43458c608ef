"""The desk's ``agent_state`` pushes: every change of an agent's state, from the agent registry."""

from __future__ import annotations

from collections.abc import Callable

from callcenter import push
from callcenter.agents.state import AgentState
from callcenter.users.models import Role

# Who hears every agent's state besides the agent: the floor's supervisors (and admins, always: push.roles).
AGENT_STATE_WATCHERS = (Role.SUPERVISOR,)


def publish_agent_state(hub: push.Fanout) -> Callable[[AgentState], None]:
    """An AgentRegistry listener: every state change reaches the agent's own panel and the supervisors'."""

    def publish(agent: AgentState) -> None:
        message = {"type": "agent_state", **agent.as_dict()}
        hub.publish(push.user(agent.username), message)
        hub.publish(push.roles(AGENT_STATE_WATCHERS), message)

    return publish
