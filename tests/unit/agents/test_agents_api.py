"""/api/v1/agents over HTTP without Asterisk: what the operations answer before AMI is asked, as documented."""

from __future__ import annotations

from callcenter.users.models import Role
from tests.apiclient import Api


async def test_an_account_without_a_phone_is_a_documented_422_on_every_queue_operation(api: Api) -> None:
    """Found by the route matrix (tests/unit/api/test_route_matrix.py): the 422 was answered, not documented."""
    agent = await api.user(Role.AGENT, username="no-phone")
    _, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    for action in ("login", "logout", "pause", "unpause"):
        path = f"/api/v1/agents/{{username}}/{action}"
        status, body = await api.request("POST", path.replace("{username}", agent.username),
                                         json={"reason": "午餐"} if action == "pause" else None)
        assert (status, body["error"]["field"]) == (422, "extension"), (action, body)
        assert "422" in document["paths"][path]["post"]["responses"], action
