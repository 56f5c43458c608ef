"""The desk's agent_state pushes: a change reaches the agent's own panels, supervisors and admins, no one else."""

from __future__ import annotations

from callcenter.agents.state import AgentState, DeviceState
from callcenter.desk.agent_state import publish_agent_state
from callcenter.desk.http import panel_hub
from callcenter.users.models import Role


async def test_an_agents_state_reaches_the_agent_and_supervisors_only() -> None:
    hub = panel_hub()
    agent = hub.subscribe("agent01", Role.AGENT)
    other = hub.subscribe("agent02", Role.AGENT)
    supervisor = hub.subscribe("sup", Role.SUPERVISOR)
    admin = hub.subscribe("admin", Role.ADMIN)
    auditor = hub.subscribe("audit", Role.AUDITOR)
    state = AgentState(username="agent01", interface="PJSIP/8001", queues={"emergency"},
                       device_state=DeviceState.NOT_INUSE)
    publish_agent_state(hub)(state)
    assert (agent.queue.get_nowait() or {})["status"] == "available"
    assert (supervisor.queue.get_nowait() or {})["type"] == "agent_state"
    assert (admin.queue.get_nowait() or {})["username"] == "agent01"
    assert other.queue.empty() and auditor.queue.empty()
