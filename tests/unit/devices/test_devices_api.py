"""/api/v1/devices: registration with provisioning, reading, conflicts in the shared SIP namespace."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.devices.models import Device
from callcenter.devices.services import identify_caller
from callcenter.users.models import Role, User
from callcenter.users.passwords import sip_ha1
from tests.apiclient import Api


async def _elder(api: Api) -> int:
    status, elder = await api.request("POST", "/api/v1/elders", json={"full_name": "测试老人"})
    assert status == 201
    return int(elder["id"])


def _device(elder_id: int, **changes: object) -> dict:
    return {"elder_id": elder_id, "kind": "one_touch", "sip_username": "dev-1001", "sip_password": "device-secret-0001",
            "phone": "177 0000 0501", "serial_number": "SN-0001", **changes}


async def test_create_is_kept_and_pending_when_ami_is_down_and_identifies_calls(api: Api) -> None:
    elder_id = await _elder(api)
    status, body = await api.request("POST", "/api/v1/devices", json=_device(elder_id))
    assert status == 201, body
    assert body["provisioning"] == "pending"
    assert (body["sip_username"], body["phone"], body["status"], body["elder_id"]) == (
        "dev-1001", "17700000501", "active", elder_id)
    assert "sip_password" not in body and "sip_ha1" not in body and body["generated_sip_password"] is None
    async with api.db.transaction() as session:
        device = await session.get(Device, body["id"])
        assert device.sip_ha1 == sip_ha1("dev-1001", "device-secret-0001")
        who = await identify_caller(session, "dev-1001", "")
        assert (who.elder_id, who.device_id) == (elder_id, body["id"])
        assert await session.scalar(select(AuditEntry.id).where(AuditEntry.action == "device.create"))
    status, read = await api.request("GET", f"/api/v1/devices/{body['id']}", role=Role.AGENT)
    assert status == 200 and read == {k: v for k, v in body.items() if k not in (
        "provisioning", "generated_sip_password", "mqtt_credentials", "mqtt_username", "generated_mqtt_password")}


async def test_list_by_elder(api: Api) -> None:
    first, second = await _elder(api), await _elder(api)
    await api.request("POST", "/api/v1/devices", json=_device(first))
    await api.request("POST", "/api/v1/devices", json=_device(second, sip_username="dev-2", phone=None,
                                                              serial_number=None, kind="watch"))
    status, page = await api.request("GET", "/api/v1/devices", role=Role.SUPERVISOR,
                                     params={"elder_id": str(second)})
    assert status == 200 and [(d["sip_username"], d["kind"]) for d in page["items"]] == [("dev-2", "watch")]
    status, page = await api.request("GET", "/api/v1/devices")
    assert page["total"] == 2
    status, body = await api.request("GET", "/api/v1/devices", params={"elder_id": "x"})
    assert status == 422 and body["error"]["field"] == "elder_id"


async def test_errors_name_the_field_and_write_nothing(api: Api) -> None:
    elder_id = await _elder(api)
    await api.request("POST", "/api/v1/devices", json=_device(elder_id))
    await api.user(Role.AGENT, username="agent-x")
    async with api.db.transaction() as session:
        (await session.scalar(select(User).where(User.username == "agent-x"))).extension = "8300"
    devices, audit = await api.count(Device), await api.count(AuditEntry)
    cases = [
        (409, "sip_username", _device(elder_id, phone=None, serial_number=None)),
        (409, "sip_username", _device(elder_id, sip_username="8300", phone=None, serial_number=None)),
        (409, "sip_username", _device(elder_id, sip_username="global", phone=None, serial_number=None)),
        (409, "phone", _device(elder_id, sip_username="dev-9", serial_number=None)),
        (409, "serial_number", _device(elder_id, sip_username="dev-9", phone=None)),
        (422, "elder_id", _device(999, sip_username="dev-9", phone=None, serial_number=None)),
        (422, "sip_username", _device(elder_id, sip_username="bad name]")),
        (422, "sip_password", _device(elder_id, sip_username="dev-9", sip_password="short")),
        (422, "sip_password", _device(elder_id, sip_username="dev-9", sip_password="x" * 15)),
        (422, "kind", _device(elder_id, sip_username="dev-9", kind="phone")),
        (422, "phone", _device(elder_id, sip_username="dev-9", phone="1234")),
    ]
    for expected, field, body in cases:
        status, answer = await api.request("POST", "/api/v1/devices", json=body)
        assert (status, answer["error"]["field"]) == (expected, field), (field, answer)
        assert "device-secret" not in str(answer)
    assert (await api.count(Device), await api.count(AuditEntry)) == (devices, audit)
    status, answer = await api.request("GET", "/api/v1/devices/424242")
    assert status == 404 and answer["error"]["field"] == "id"


async def test_without_a_password_the_platform_generates_one_and_shows_it_once(api: Api) -> None:
    elder_id = await _elder(api)
    created = []
    for name in ("dev-gen-1", "dev-gen-2"):
        body = {k: v for k, v in _device(elder_id, sip_username=name, phone=None, serial_number=None).items()
                if k != "sip_password"}
        status, device = await api.request("POST", "/api/v1/devices", json=body)
        assert status == 201, device
        created.append(device)
    passwords = [device["generated_sip_password"] for device in created]
    assert all(len(password) >= 20 and password.isalnum() for password in passwords)
    assert passwords[0] != passwords[1]
    async with api.db.transaction() as session:
        stored = await session.get(Device, created[0]["id"])
        assert stored.sip_ha1 == sip_ha1("dev-gen-1", passwords[0])  # only the digest is kept
        details = (await session.scalars(select(AuditEntry.details).where(AuditEntry.action == "device.create")
                                         .order_by(AuditEntry.id))).all()
        assert [entry["sip_password"] for entry in details] == ["generated", "generated"]
        assert passwords[0] not in str(details)
    status, read = await api.request("GET", f"/api/v1/devices/{created[0]['id']}")
    assert status == 200 and "generated_sip_password" not in read and passwords[0] not in str(read)


async def test_an_operator_password_needs_sixteen_characters(api: Api) -> None:
    elder_id = await _elder(api)
    status, body = await api.request("POST", "/api/v1/devices", json=_device(elder_id, sip_password="x" * 15))
    assert status == 422 and body["error"]["field"] == "sip_password" and "16" in body["error"]["message"]
    status, body = await api.request("POST", "/api/v1/devices", json=_device(elder_id, sip_password="y" * 16))
    assert status == 201 and body["generated_sip_password"] is None


async def test_a_device_gets_a_new_password_generated_or_given_and_only_admins_change_it(api: Api) -> None:
    elder_id = await _elder(api)
    _, device = await api.request("POST", "/api/v1/devices", json=_device(elder_id))
    path = f"/api/v1/devices/{device['id']}/sip-password"
    assert (await api.request("POST", path, json={}, role=Role.SUPERVISOR))[0] == 403
    status, changed = await api.request("POST", path, json={})
    assert status == 200 and changed["provisioning"] == "pending", changed  # AMI is down in unit tests
    generated = changed["generated_sip_password"]
    assert len(generated) >= 20 and generated != "device-secret-0001"
    async with api.db.transaction() as session:
        assert (await session.get(Device, device["id"])).sip_ha1 == sip_ha1("dev-1001", generated)
    status, body = await api.request("POST", path, json={"sip_password": "z" * 15})
    assert status == 422 and body["error"]["field"] == "sip_password"
    status, changed = await api.request("POST", path, json={"sip_password": "operator-chosen-1234"})
    assert status == 200 and changed["generated_sip_password"] is None
    async with api.db.transaction() as session:
        assert (await session.get(Device, device["id"])).sip_ha1 == sip_ha1("dev-1001", "operator-chosen-1234")
        details = (await session.scalars(select(AuditEntry.details).where(AuditEntry.action == "device.sip_password")
                                          .order_by(AuditEntry.id))).all()
    assert [entry["sip_password"] for entry in details] == ["generated", "set by the operator"]
    assert "operator-chosen" not in str(details) and generated not in str(details)
    assert (await api.request("POST", "/api/v1/devices/9999/sip-password", json={}))[0] == 404
