"""A device's MQTT account: issued on the platform-managed broker when the device is registered (shown once, only
its hash kept), rotated on request, and not issued where the broker is not the platform's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.api.context import TOKENS
from callcenter.audit.models import AuditEntry
from callcenter.config import HostPort
from callcenter.db.session import Database
from callcenter.devices.models import Device
from callcenter.devices.services import MQTT_ACCOUNTS
from callcenter.mosquitto.accounts import DeviceMqttAccounts
from callcenter.mosquitto.broker import MosquittoBroker
from callcenter.recordings.backends import RECORDINGS, RecordingStores
from tests.apiclient import Api, api_settings, assembled
from tests.mqtt import TestBroker

pytestmark = pytest.mark.timeout(30)


async def _api(db: Database, tmp_path: Path, stores: RecordingStores, accounts: DeviceMqttAccounts) -> Api:
    settings = api_settings(tmp_path)
    assembly = assembled(db, settings, replacements={RECORDINGS: stores, MQTT_ACCOUNTS: accounts})
    client = TestClient(TestServer(assembly.web))
    await client.start_server()
    return Api(client, db, settings, assembly.web[TOKENS])


@pytest.fixture
async def managed_api(db: Database, tmp_path: Path, api_recording_stores: RecordingStores,
                      broker: TestBroker) -> AsyncIterator[Api]:
    """The API with the session's real broker as the platform-managed one."""
    api = await _api(db, tmp_path, api_recording_stores, DeviceMqttAccounts(broker.broker))
    try:
        yield api
    finally:
        await api.client.close()


async def _device(api: Api, name: str) -> dict:
    status, elder = await api.request("POST", "/api/v1/elders", json={"full_name": "测试老人"})
    assert status == 201
    status, device = await api.request("POST", "/api/v1/devices", json={
        "elder_id": elder["id"], "kind": "watch", "sip_username": name})
    assert status == 201, device
    return dict(device)


async def _logs_in(broker: TestBroker, username: str, password: str) -> bool:
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, username=username, password=password, timeout=5):
            return True
    except aiomqtt.MqttCodeError:
        return False


async def test_a_registered_device_gets_an_mqtt_account_shown_once(managed_api: Api, broker: TestBroker) -> None:
    device = await _device(managed_api, "watch-mqtt-1")
    assert (device["mqtt_credentials"], device["mqtt_username"]) == ("issued", str(device["id"]))
    password = device["generated_mqtt_password"]
    assert len(password) >= 20 and password.isalnum() and password != device["generated_sip_password"]
    assert await _logs_in(broker, device["mqtt_username"], password)
    assert password not in broker.broker.password_file.read_text()  # the broker keeps its hash only
    status, read = await managed_api.request("GET", f"/api/v1/devices/{device['id']}")
    assert status == 200 and password not in str(read) and "mqtt_username" not in read
    async with managed_api.db.transaction() as session:
        details = (await session.scalars(select(AuditEntry.details)
                                         .where(AuditEntry.action == "device.mqtt_password"))).all()
    assert details == [{"mqtt_username": str(device["id"]), "mqtt_password": "generated"}]


async def test_a_rotation_gives_a_new_password_and_the_broker_refuses_the_old(managed_api: Api,
                                                                             broker: TestBroker) -> None:
    device = await _device(managed_api, "watch-mqtt-2")
    path = f"/api/v1/devices/{device['id']}/mqtt-password"
    assert (await managed_api.request("POST", path, role=None))[0] == 401
    status, rotated = await managed_api.request("POST", path)
    assert status == 200, rotated
    assert rotated["mqtt_username"] == str(device["id"]) and rotated["generated_mqtt_password"] != device[
        "generated_mqtt_password"]
    assert await _logs_in(broker, rotated["mqtt_username"], rotated["generated_mqtt_password"])
    assert not await _logs_in(broker, rotated["mqtt_username"], device["generated_mqtt_password"])
    assert (await managed_api.request("POST", "/api/v1/devices/999999/mqtt-password"))[0] == 404


async def test_nothing_is_issued_when_the_broker_is_not_the_platforms(api: Api) -> None:
    device = await _device(api, "watch-mqtt-3")  # the default API: CC_MQTT_URL=off
    assert (device["mqtt_credentials"], device["mqtt_username"], device["generated_mqtt_password"]) == (
        "not_managed", None, None)
    status, body = await api.request("POST", f"/api/v1/devices/{device['id']}/mqtt-password")
    assert status == 409 and body["error"]["code"] == "mqtt_not_managed", body


async def test_a_device_whose_account_cannot_be_written_is_kept_and_says_so(db: Database, tmp_path: Path,
                                                                           api_recording_stores: RecordingStores
                                                                           ) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the broker's directory should be")
    accounts = DeviceMqttAccounts(MosquittoBroker(blocked, HostPort("127.0.0.1", 1884), "callcenter"))
    api = await _api(db, tmp_path, api_recording_stores, accounts)
    try:
        device = await _device(api, "watch-mqtt-4")
        assert (device["mqtt_credentials"], device["generated_mqtt_password"]) == ("failed", None)
        assert await api.count(Device) == 1  # the SOS button works without MQTT: the device is kept
        status, body = await api.request("POST", f"/api/v1/devices/{device['id']}/mqtt-password")
        assert status == 503 and body["error"]["code"] == "unavailable", body
    finally:
        await api.client.close()
