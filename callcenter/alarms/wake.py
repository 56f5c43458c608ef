"""Waking the alarm distributor when an alarm is stored (``ALARM_WAKE``), from whichever process stored it.

The distributor runs in the platform's process. There, ``ALARM_WAKE`` is its own ``wake``. In the telemetry process
(``callcenter.telemetry``: device readings, whose vital-sign alarms are stored there) it is an ``AlarmWakeSender``,
which publishes one message on ``WAKE_TOPIC``; the platform's process subscribes to that topic and wakes its
distributor. A wake carries nothing: the distributor's round reads every new alarm from the database. A wake that
is lost (no broker for a moment) costs only time: the distributor's sweep (CC_ALARM_SWEEP_SECONDS) offers the
alarm anyway."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from callcenter.logs import get_logger
from callcenter.telephony.device_topics import INTERNAL_ROOT
from callcenter.telephony.mqtt import MqttClient, MqttError, MqttHandler, MqttMessage, Publish

log = get_logger(__name__)

WAKE_TOPIC = f"{INTERNAL_ROOT}/alarms/stored"

# Called (with any arguments, which it ignores) once a new alarm is committed; cheap, never waits.
AlarmWake = Callable[..., None]
ALARM_WAKE = web.AppKey("alarm_wake", AlarmWake)


class AlarmWakeSender:
    """``wake`` for a process other than the platform's: one message on WAKE_TOPIC at a time; wakes that arrive
    while one is on its way are sent as one more message after it."""

    def __init__(self, mqtt: MqttClient) -> None:
        self._mqtt = mqtt
        self._pending = False
        self._sending: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def wake(self, *_args: object) -> None:
        self._pending = True
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send(), name="alarm-wake")

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            try:
                await self._mqtt.publish(WAKE_TOPIC, b"{}")
            except MqttError as error:
                self.failed += 1
                log.warning("alarm.wake_not_sent", error=str(error)[:200],
                            detail="the distributor's sweep (CC_ALARM_SWEEP_SECONDS) offers the alarm")
                return
            self.sent += 1


def wake_on_message(wake: AlarmWake) -> MqttHandler:
    """The platform's handler of WAKE_TOPIC: another process stored an alarm."""

    async def on_wake(_message: MqttMessage, _publish: Publish) -> None:
        wake()

    return on_wake
