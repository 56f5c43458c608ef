"""Devices' MQTT accounts on the platform-managed broker, for the devices domain: a device's username is its id,
its password is set when the device is provisioned (and again on rotation) and kept only as the broker's hash."""

from __future__ import annotations

import asyncio

from callcenter.mosquitto.broker import MosquittoBroker
from callcenter.telephony.device_topics import mqtt_username


class DeviceMqttAccounts:
    """``broker`` None: the broker is not the platform's (another broker, or MQTT off), so no account is issued
    here. File writes and ``mosquitto_passwd`` run in a worker thread, one change at a time."""

    def __init__(self, broker: MosquittoBroker | None) -> None:
        self._broker = broker
        self._lock = asyncio.Lock()

    @property
    def managed(self) -> bool:
        return self._broker is not None

    async def set_device_password(self, device_id: int, password: str) -> str:
        """Give the device ``password`` (a new account, or a new password for it); returns its MQTT username. A
        running broker takes it before this returns. Raises when the broker is not the platform's, or the password
        file cannot be written."""
        if self._broker is None:
            raise RuntimeError("the MQTT broker is not the platform's own: its accounts are issued by its admin")
        username = mqtt_username(device_id)
        async with self._lock:
            await asyncio.to_thread(self._broker.set_password, username, password)
        return username

    async def remove_device(self, device_id: int) -> bool:
        """Close the device's account (a retired device); False when it had none or the broker is not ours."""
        if self._broker is None:
            return False
        async with self._lock:
            return await asyncio.to_thread(self._broker.remove_account, mqtt_username(device_id))
