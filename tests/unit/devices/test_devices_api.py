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
    return {"elder_id": elder_id, "kind": "one_touch", "sip_username": "dev-1001", "sip_password": "device-secret-1",
            "phone": "177 0000 0501", "serial_number": "SN-0001", **changes}


async def test_create_is_kept_and_pending_when_ami_is_down_and_identifies_calls(api: Api) -> None:
    elder_id = await _elder(api)
    status, body = await api.request("POST", "/api/v1/devices", json=_device(elder_id))
    assert status == 201, body
    assert body["provisioning"] == "pending"
    assert (body["sip_username"], body["phone"], body["status"], body["elder_id"]) == (
        "dev-1001", "17700000501", "active", elder_id)
    assert "sip_password" not in body and "sip_ha1" not in body
    async with api.db.transaction() as session:
        device = await session.get(Device, body["id"])
        assert device.sip_ha1 == sip_ha1("dev-1001", "device-secret-1")
        who = await identify_caller(session, "dev-1001", "")
        assert (who.elder_id, who.device_id) == (elder_id, body["id"])
        assert await session.scalar(select(AuditEntry.id).where(AuditEntry.action == "device.create"))
    status, read = await api.request("GET", f"/api/v1/devices/{body['id']}", role=Role.AGENT)
    assert status == 200 and read == {k: v for k, v in body.items() if k != "provisioning"}


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
