"""What the route table's handler refuses before a domain handler runs: requests the database could not take.
Each was found by the fuzzing (test_fuzz.py) as a 500 or as an answer the document does not allow."""

from __future__ import annotations

from callcenter.users.models import Role
from tests.apiclient import Api


async def test_a_nul_character_anywhere_is_refused_before_the_database(api: Api) -> None:
    """PostgreSQL stores no NUL in text: ``GET /audit?target_type=%00`` ended in a 500 there."""
    status, body = await api.request("GET", "/api/v1/audit", role=Role.AUDITOR, params={"target_type": "a\x00b"})
    assert status == 422 and body["error"]["field"] == "target_type", body
    status, body = await api.request("GET", "/api/v1/elders", params={"q": "\x00"})
    assert status == 422 and body["error"]["field"] == "q", body
    status, body = await api.request("POST", "/api/v1/auth/login", role=None,
                                     json={"username": "admin\x00", "password": "correct-horse-battery"})
    assert status == 422 and body["error"]["field"] == "username", body
    status, body = await api.request("POST", "/api/v1/elders", json={
        "full_name": "王秀英", "contacts": [{"role": "relative", "name": "李建国", "phone": "13900139001",
                                            "relationship": "儿\x00子"}]})
    assert status == 422 and body["error"]["field"] == "contacts.0.relationship", body
    status, body = await api.request("POST", "/api/v1/elders", json={"full_name": "王秀英", "\x00": 1})
    assert status == 422 and body["error"]["field"] == "\x00", body
    status, body = await api.request("GET", "/api/v1/users/admin%00")
    assert status == 404 and body["error"]["field"] == "username", body


async def test_an_id_is_one_or_more_as_documented(api: Api) -> None:
    """``GET /calls/0/conference`` answered 200 (an empty roster) where the document's minimum is 1."""
    for path in ("/api/v1/calls/0/conference", "/api/v1/elders/0", "/api/v1/elders/00"):
        status, body = await api.request("GET", path)
        assert status == 404 and body["error"]["code"] == "not_found", (path, body)

