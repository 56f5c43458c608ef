"""Which broker the platform's MQTT client uses, decided once from the settings and the machine:

* ``CC_MQTT_URL=off``: none (off);
* ``CC_MQTT_URL=mqtt://host:port``: that broker (external), with CC_MQTT_USERNAME/CC_MQTT_PASSWORD; its accounts and
  ACLs are its own admin's business;
* ``CC_MQTT_URL`` empty (the default): the platform-managed Mosquitto on CC_MQTT_BIND when ``mosquitto`` is
  installed here (``callcenter mqtt start`` renders and starts it; ``make run`` runs that), else none (off), and
  the reason is logged and shown on /healthz.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets

from callcenter.config import Settings
from callcenter.mosquitto.broker import MosquittoBroker, mosquitto_binary
from callcenter.secret_files import generated_secret
from callcenter.telephony.mqtt import MqttEndpoint


class BrokerMode(enum.StrEnum):
    MANAGED = "managed"
    EXTERNAL = "external"
    OFF = "off"


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerChoice:
    mode: BrokerMode
    endpoint: MqttEndpoint | None  # where the platform connects, with its account; None when off
    broker: MosquittoBroker | None  # the platform-managed broker (managed only)
    reason: str  # why it is off, or which broker it is


NOT_INSTALLED = ("mosquitto is not installed on this machine (Debian package mosquitto; then `callcenter mqtt "
                 "start`, which make run does), and CC_MQTT_URL names no other broker")


def choose_broker(settings: Settings) -> BrokerChoice:
    if settings.mqtt_off:
        return BrokerChoice(BrokerMode.OFF, None, None, "CC_MQTT_URL=off")
    external = settings.mqtt_external
    if external is not None:
        endpoint = MqttEndpoint(external.host, external.port, settings.mqtt_username, settings.mqtt_password)
        return BrokerChoice(BrokerMode.EXTERNAL, endpoint, None, f"the broker at {settings.mqtt_url}")
    if mosquitto_binary() is None:
        return BrokerChoice(BrokerMode.OFF, None, None, NOT_INSTALLED)
    broker = MosquittoBroker.for_settings(settings)
    endpoint = MqttEndpoint(broker.connect_host, broker.bind.port, settings.mqtt_username, platform_password(settings))
    return BrokerChoice(BrokerMode.MANAGED, endpoint, broker, f"the platform-managed Mosquitto on {broker.bind}")


def telemetry_password(settings: Settings) -> str:
    """The telemetry process's password on the managed broker, generated once per data dir (no setting: only the
    platform's two processes use it)."""
    return generated_secret(settings.data_dir / "secrets" / "mqtt-telemetry.secret", lambda: secrets.token_urlsafe(32))


def telemetry_endpoint(settings: Settings, choice: BrokerChoice) -> MqttEndpoint | None:
    """Where the telemetry process connects, and as whom: on the managed broker its own account; on another
    broker the platform's (CC_MQTT_USERNAME), whose admin must let it connect twice (two client ids)."""
    if choice.endpoint is None:
        return None
    if choice.broker is None:
        return choice.endpoint
    return MqttEndpoint(choice.endpoint.host, choice.endpoint.port, choice.broker.telemetry_username,
                        telemetry_password(settings))


def platform_password(settings: Settings) -> str:
    """The platform account's password on the managed broker: CC_MQTT_PASSWORD, else generated once per data dir
    and kept readable by the platform's user only."""
    if settings.mqtt_password:
        return settings.mqtt_password
    return generated_secret(settings.data_dir / "secrets" / "mqtt-platform.secret", lambda: secrets.token_urlsafe(32))
