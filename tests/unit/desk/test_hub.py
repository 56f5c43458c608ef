"""The panel hub: a slow browser fills only its own queue and is dropped; the others never wait."""

from __future__ import annotations

from callcenter.agents.state import AgentState, DeviceState
from callcenter.desk.hub import PanelHub, publish_agent_state
from callcenter.users.models import Role


async def test_a_slow_panel_is_dropped_and_never_delays_the_others() -> None:
    hub = PanelHub(queue_size=10)
    slow = hub.connect("agent01", Role.AGENT)  # never drained
    fast = hub.connect("agent01", Role.AGENT)
    received = []
    for index in range(50):
        hub.to_user("agent01", {"type": "tick", "n": index})
        while not fast.queue.empty():
            received.append(fast.queue.get_nowait()["n"])
    assert received == list(range(50))
    assert slow.dropped.is_set() and slow.queue.qsize() == 10
    assert hub.clients == 1


async def test_messages_reach_the_right_people() -> None:
    hub = PanelHub()
    agent = hub.connect("agent01", Role.AGENT)
    other = hub.connect("agent02", Role.AGENT)
    supervisor = hub.connect("sup", Role.SUPERVISOR)
    admin = hub.connect("admin", Role.ADMIN)
    state = AgentState(username="agent01", interface="PJSIP/8001", queues={"emergency"},
                       device_state=DeviceState.NOT_INUSE)
    publish_agent_state(hub)(state)
    assert agent.queue.get_nowait()["status"] == "available"
    assert supervisor.queue.get_nowait()["type"] == "agent_state"
    assert admin.queue.get_nowait()["username"] == "agent01"
    assert other.queue.empty()
