"""GET /api/v1/calls/{call_id}/conference over HTTP: the roster of a call, and of no call."""

from __future__ import annotations

from callcenter.users.models import Role
from tests.apiclient import Api


async def test_the_roster_of_a_call_that_does_not_exist_is_404(api: Api) -> None:
    """Found by the fuzzing (tests/unit/api/test_fuzz.py): the document promised 404, and an empty roster (200) came
    back for any call id."""
    status, body = await api.request("GET", "/api/v1/calls/4242/conference", role=Role.SUPERVISOR)
    assert status == 404 and body["error"]["field"] == "call_id", body
