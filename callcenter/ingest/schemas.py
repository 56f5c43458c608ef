"""The ingest's REST schemas: ingest keys (admins) and the signed device-message batch with its answers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, StringConstraints, field_validator, model_serializer

from callcenter.api.schemas import RequestSchema, ResponseSchema, RowId

MAX_BATCH = 100  # device messages in one request
MAX_KEY_DEVICES = 10_000  # devices one key may be granted in one request

DeviceIds = Annotated[list[RowId], Field(min_length=1, max_length=MAX_KEY_DEVICES,
                                         description="the devices the key may submit messages for")]


def _distinct(device_ids: list[int]) -> list[int]:
    return sorted(set(device_ids))


class IngestKeyCreate(RequestSchema):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="whose system signs with it: a gateway, a vendor's cloud")
    device_ids: DeviceIds

    _distinct_ids = field_validator("device_ids")(_distinct)


class IngestKeyDevices(RequestSchema):
    device_ids: DeviceIds

    _distinct_ids = field_validator("device_ids")(_distinct)


class IngestKeyOut(ResponseSchema):
    key_id: str
    name: str
    device_ids: list[int]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class IngestKeyCreated(IngestKeyOut):
    secret: str = Field(description="the HMAC-SHA256 signing secret: shown this once, never again")


class IngestKeyList(ResponseSchema):
    items: list[IngestKeyOut]


class DeviceMessageIn(RequestSchema):
    device_id: RowId = Field(description="the device's id in the platform (its MQTT username)")
    kind: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="alarm (position and reading once their domains take them): the MQTT topic's last level")
    message: dict[str, Any] = Field(description="the device's JSON payload, exactly as it publishes it on MQTT "
                                                "(docs/device-protocol.md)")


class DeviceMessagesIn(RequestSchema):
    messages: list[DeviceMessageIn] = Field(min_length=1, max_length=MAX_BATCH)


class DeviceMessageAnswer(ResponseSchema):
    """The acknowledgement a device gets on ``cc/devices/<id>/ack`` (docs/device-protocol.md): ``reason`` and
    ``field`` appear only when they say something."""

    message_id: str | None
    kind: str
    status: Literal["stored", "rejected"]
    reason: Literal["payload_too_large", "not_json", "invalid", "unknown_device"] | None = None
    field: str | None = None
    received_at: str = Field(description="ISO 8601 with the centre's offset, to the millisecond")

    @model_serializer(mode="wrap")
    # Unannotated on purpose: with a return type, the document would describe an open object instead of the fields.
    def _only_what_says_something(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # noqa: ANN202
        document = handler(self)
        return {name: value for name, value in document.items()
                if value is not None or name not in ("reason", "field")}


class DeviceMessagesOut(ResponseSchema):
    answers: list[DeviceMessageAnswer] = Field(description="one per message, in the order sent")
