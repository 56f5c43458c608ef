"""The devices' MQTT topic layout (docs/device-protocol.md), in one place: the broker's ACL is rendered from it
(``callcenter.mosquitto``) and the domains subscribe and answer with it.

``cc/devices/<device id>/<kind>``: a device publishes its ``alarm``, ``position``, ``reading`` and ``heartbeat``
messages under its own id (its MQTT username on the platform-managed broker) and reads the platform's
acknowledgements on ``ack``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any

ROOT = "cc/devices"
ALARM, POSITION, READING, HEARTBEAT = "alarm", "position", "reading", "heartbeat"
DEVICE_MESSAGES = (ALARM, POSITION, READING, HEARTBEAT)  # device → platform
ACK = "ack"  # platform → device: one per stored message
PLATFORM_MESSAGES = (ACK,)
ALL_DEVICES = f"{ROOT}/#"  # what the platform's own account may read and write
# Where the platform's processes tell each other things (a new alarm, from the telemetry process to the platform's):
# the platform's account only; no device may read or write there.
INTERNAL_ROOT = "cc/platform"
ALL_INTERNAL = f"{INTERNAL_ROOT}/#"

_DEVICE_ID = re.compile(r"[1-9][0-9]{0,9}")


def device_filter(kind: str) -> str:
    """The filter for one kind of message from every device: ``cc/devices/+/alarm``."""
    if kind not in DEVICE_MESSAGES:
        raise ValueError(f"{kind!r} is not a device message ({', '.join(DEVICE_MESSAGES)})")
    return f"{ROOT}/+/{kind}"


def device_topic(device_id: int, kind: str) -> str:
    """``cc/devices/<device id>/<kind>`` (``kind`` one of DEVICE_MESSAGES or PLATFORM_MESSAGES)."""
    if kind not in DEVICE_MESSAGES + PLATFORM_MESSAGES:
        raise ValueError(f"{kind!r} is not a device topic")
    return f"{ROOT}/{int(device_id)}/{kind}"


def ack_topic(device_id: int) -> str:
    """Where the platform acknowledges a device's messages: ``cc/devices/<device id>/ack``."""
    return device_topic(device_id, ACK)


def parse_device_topic(topic: str) -> tuple[int, str] | None:
    """(device id, kind) of ``cc/devices/<id>/<kind>``, or None for any other topic (a malformed id too)."""
    prefix, sep, rest = topic.rpartition("/")
    head, _, device = prefix.rpartition("/")
    if not sep or head != ROOT or not _DEVICE_ID.fullmatch(device) or rest not in DEVICE_MESSAGES + PLATFORM_MESSAGES:
        return None
    return int(device), rest


def mqtt_username(device_id: int) -> str:
    """A device's MQTT username on the platform-managed broker: its id, the one topic tree its ACL opens."""
    return str(int(device_id))


def ack_document(kind: str, message_id: str | None, status: str, received_at: dt.datetime, tz: dt.tzinfo, *,
                 reason: str | None = None, field: str | None = None) -> dict[str, Any]:
    """The platform's answer to one alarm, position or reading (docs/device-protocol.md, "Acknowledgement"):
    ``stored`` or ``rejected`` with the protocol's reason (and the field to fix, for ``invalid``). The same
    document answers over MQTT (``ack_payload``) and HTTP (the signed ingest's ``answers``)."""
    answer: dict[str, Any] = {"message_id": message_id, "kind": kind, "status": status}
    answer |= {name: value for name, value in (("reason", reason), ("field", field)) if value is not None}
    answer["received_at"] = received_at.astimezone(tz).isoformat(timespec="milliseconds")
    return answer


def ack_payload(kind: str, message_id: str | None, status: str, received_at: dt.datetime, tz: dt.tzinfo, *,
                reason: str | None = None, field: str | None = None) -> bytes:
    """``ack_document`` as the bytes published on ``cc/devices/<id>/ack``."""
    return json.dumps(ack_document(kind, message_id, status, received_at, tz, reason=reason, field=field),
                      ensure_ascii=False).encode()


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceAnswer:
    """What a domain's intake answers one device message, whatever carried it: ``stored`` (committed) or
    ``rejected`` with the protocol's reason (``payload_too_large``, ``not_json``, ``invalid`` with ``field``,
    ``unknown_device``). The transport turns it into ``ack_document`` with the kind and its receipt time."""

    message_id: str | None
    status: str
    reason: str | None = None
    field: str | None = None

    def document(self, kind: str, received_at: dt.datetime, tz: dt.tzinfo) -> dict[str, Any]:
        return ack_document(kind, self.message_id, self.status, received_at, tz, reason=self.reason,
                            field=self.field)


def message_id_of(payload: bytes) -> str | None:
    """The message's id for a rejection's answer, when the message can be read that far."""
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    value = document.get("message_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None
