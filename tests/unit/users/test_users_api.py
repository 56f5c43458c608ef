"""/api/v1/users: creating staff accounts with phones, reading them, and the shared SIP namespace."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.audit.models import AuditEntry
from callcenter.users.models import Role, User
from callcenter.users.passwords import sip_ha1, verify_password
from tests.apiclient import Api

AGENT = {"username": "agent07", "password": "panel-password-1", "role": "agent", "display_name": "坐席七号",
         "extension": "8107", "sip_password": "phone-password-1"}


async def test_create_agent_with_extension_is_kept_when_asterisk_is_unreachable(api: Api) -> None:
    status, body = await api.request("POST", "/api/v1/users", json=AGENT)
    assert status == 201, body
    assert body["provisioning"] == "pending"  # AMI is not connected in unit tests
    assert {k: body[k] for k in ("username", "role", "display_name", "extension", "active")} == {
        "username": "agent07", "role": "agent", "display_name": "坐席七号", "extension": "8107", "active": True}
    assert not {"password", "password_hash", "sip_password", "sip_ha1"} & set(body)
    async with api.db.transaction() as session:
        user = await session.scalar(select(User).where(User.username == "agent07"))
        assert verify_password(user.password_hash, "panel-password-1")
        assert user.sip_ha1 == sip_ha1("8107", "phone-password-1")
        assert await session.scalar(select(AuditEntry.actor_label).where(AuditEntry.action == "user.create"))
    status, _ = await api.request("POST", "/api/v1/auth/login", role=None,
                                  json={"username": "agent07", "password": "panel-password-1"})
    assert status == 200
    # The rendered Asterisk config already has the phone (it reached "pending" only at the AMI reload).
    runtime = AsteriskRuntime.for_settings(api.settings)
    endpoints = runtime.host_path(runtime.instance_dir / "etc" / "pjsip_endpoints.conf")
    assert "[8107](endpoint-common)" in endpoints.read_text()


async def test_create_user_without_extension_needs_no_provisioning(api: Api) -> None:
    status, body = await api.request("POST", "/api/v1/users", json={
        "username": "auditor1", "password": "maple-kettle-orbit-7", "role": "auditor"})
    assert status == 201 and body["provisioning"] == "not_needed" and body["extension"] is None


async def test_list_and_read_users(api: Api) -> None:
    await api.request("POST", "/api/v1/users", json=AGENT)
    status, page = await api.request("GET", "/api/v1/users", role=Role.SUPERVISOR, params={"role": "agent"})
    assert status == 200 and [u["username"] for u in page["items"]] == ["agent07"]
    status, user = await api.request("GET", "/api/v1/users/agent07", role=Role.SUPERVISOR)
    assert status == 200 and user["extension"] == "8107"
    status, body = await api.request("GET", "/api/v1/users/nobody")
    assert status == 404 and body["error"]["field"] == "username"


async def test_agents_read_only_their_own_account(api: Api) -> None:
    agent = await api.user(Role.AGENT, username="agent-self")
    token = await api.token_for(agent)
    assert (await api.request("GET", "/api/v1/users/agent-self", token=token))[0] == 200
    status, body = await api.request("GET", "/api/v1/users/admin-x", token=token)
    assert status == 403 and "own account" in body["error"]["message"]
    assert (await api.request("GET", "/api/v1/users", token=token))[0] == 403


async def test_validation_and_conflicts_write_nothing(api: Api) -> None:
    await api.request("POST", "/api/v1/users", json=AGENT)
    users, audit = await api.count(User), await api.count(AuditEntry)
    cases = [
        (422, "sip_password", {**AGENT, "username": "agent08", "extension": "8108", "sip_password": None}),
        (422, "sip_password", {**AGENT, "username": "agent08", "extension": None}),
        (422, "extension", {**AGENT, "username": "agent08", "extension": "81 08"}),
        (422, "password", {**AGENT, "username": "agent08", "extension": "8108", "password": "short"}),
        # The policy (users.passwords): common, and the account's own name.
        (422, "password", {**AGENT, "username": "agent08", "extension": "8108", "password": "password123"}),
        (422, "password", {**AGENT, "username": "agent08", "extension": "8108", "password": "agent08agent08"}),
        (422, "role", {**AGENT, "username": "agent08", "extension": "8108", "role": "root"}),
        (422, "display_name", {**AGENT, "username": "agent08", "extension": "8108", "display_name": 'x" <1>'}),
        (422, "username", {**AGENT, "username": "Has Space", "extension": "8108"}),
        (409, "username", {**AGENT, "extension": "8108"}),
        (409, "extension", {**AGENT, "username": "agent08"}),
    ]
    for status_expected, field, body in cases:
        status, answer = await api.request("POST", "/api/v1/users", json=body)
        assert (status, answer["error"]["field"]) == (status_expected, field), (field, answer)
    assert (await api.count(User), await api.count(AuditEntry)) == (users, audit)


async def test_extension_may_not_take_a_devices_sip_username(api: Api) -> None:
    _, elder = await api.request("POST", "/api/v1/elders", json={"full_name": "测试"})
    status, _ = await api.request("POST", "/api/v1/devices", json={
        "elder_id": elder["id"], "kind": "pendant", "sip_username": "8200"})
    assert status == 201
    status, body = await api.request("POST", "/api/v1/users", json={**AGENT, "extension": "8200"})
    assert status == 409 and body["error"]["field"] == "extension" and "device" in body["error"]["message"]
