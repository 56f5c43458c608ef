"""The position intake every device transport calls (MQTT now): socket-free, with the alarm intake's contract.

A transport hands over the device it authenticated and the message's bytes; ``PositionIntake.receive_message``
validates them, stores the fix, judges it against the elder's geofences (raising a geofence alarm on a crossing,
``fences``), commits, and only then returns the ``PositionReceipt`` the transport acknowledges:

- the device must be registered and not retired (``unknown_device``, ``device_retired``);
- the message must be a JSON object of at most ``MAX_MESSAGE_BYTES`` with the fields of
  ``schemas.DevicePositionMessage``, of their types and ranges (``malformed``, ``oversized``, ``invalid_field``
  naming the field), its time not beyond CC_ALARM_CLOCK_SKEW_SECONDS in the future (``future_time``);
- a message id the device used before for a position returns that position's receipt again (``duplicate``):
  nothing is stored, nothing judged again;
- otherwise the fix is stored: WGS-84 and motion sealed (``positions.fix``), accuracy, source, the device's time
  and the platform's, and the device's elder at that moment.

A refusal raises ``PositionRefused`` (an ``Invalid``) with its reason (the alarm intake's ``RefusalReason``) and the
field to blame; nothing of the message is stored, and the refusal is counted by reason (``/healthz``'s
``position_intake`` check).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.intake import DEVICE_SOURCES, RefusalReason
from callcenter.alarms.models import AlarmSource
from callcenter.api.errors import ApiError, Invalid
from callcenter.api.registry import parse_json_body
from callcenter.api.schemas import MAX_INT
from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceStatus
from callcenter.locations.fences import judge
from callcenter.locations.models import Position
from callcenter.locations.schemas import DevicePositionMessage
from callcenter.logs import get_logger

log = get_logger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024  # a fix is a few hundred bytes


class PositionRefused(Invalid):
    """The message was not taken: ``reason`` says why, ``field`` what to fix. Nothing was stored."""

    def __init__(self, reason: RefusalReason, message: str, *, field: str | None = None,
                 details: list[dict[str, str | None]] | None = None) -> None:
        super().__init__(message, field=field, code=f"position_{reason.value}", details=details)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class PositionReceipt:
    """What the transport acknowledges to the device: committed when returned."""

    device_id: int
    message_id: str
    position_id: int
    alarm_ids: tuple[int, ...] = ()  # geofence alarms this fix raised or was counted on
    duplicate: bool = False  # received before: this is its receipt again


def parse_message(raw: bytes) -> DevicePositionMessage:
    """The message's bytes as a ``DevicePositionMessage``, or ``PositionRefused`` naming the field."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise PositionRefused(RefusalReason.OVERSIZED, f"the message is {len(raw)} bytes; at most {MAX_MESSAGE_BYTES}")
    try:
        return parse_json_body(DevicePositionMessage, raw)  # type: ignore[return-value]
    except RecursionError:
        raise PositionRefused(RefusalReason.MALFORMED, "the message is nested too deeply") from None
    except Invalid as invalid:
        named = invalid.message if invalid.field is None or invalid.message.startswith(invalid.field) \
            else f"{invalid.field}: {invalid.message}"
        raise PositionRefused(RefusalReason.INVALID_FIELD, named, field=invalid.field,
                              details=invalid.details) from None
    except ApiError as malformed:
        raise PositionRefused(RefusalReason.MALFORMED, malformed.message) from None


async def _device(session: AsyncSession, device_id: int) -> Device:
    if not 1 <= device_id <= MAX_INT:
        raise PositionRefused(RefusalReason.UNKNOWN_DEVICE, f"no device {device_id}", field="device_id")
    # Locked (PostgreSQL): one device's fixes are judged one at a time, so a crossing is seen once.
    device = await session.get(Device, device_id, with_for_update=True)
    if device is None:
        raise PositionRefused(RefusalReason.UNKNOWN_DEVICE, f"no device {device_id}", field="device_id")
    if device.status is DeviceStatus.RETIRED:
        raise PositionRefused(RefusalReason.DEVICE_RETIRED, f"device {device_id} is retired", field="device_id")
    return device


async def receive(session: AsyncSession, device_id: int, source: AlarmSource, message: DevicePositionMessage, *,
                  now: dt.datetime, clock_skew: dt.timedelta, merge_window: dt.timedelta,
                  tz: ZoneInfo) -> PositionReceipt:
    """Take one fix in the caller's transaction (see the module); ``PositionRefused`` with nothing added."""
    if source not in DEVICE_SOURCES:
        raise ValueError(f"{source.value} is not a device transport")
    if message.measured_at > now + clock_skew:
        raise PositionRefused(RefusalReason.FUTURE_TIME, f"measured_at is {message.measured_at.isoformat()}, later "
                              f"than the platform's clock allows ({int(clock_skew.total_seconds())} s ahead)",
                              field="measured_at")
    device = await _device(session, device_id)
    seen = await session.scalar(select(Position.id).where(Position.device_id == device.id,
                                                          Position.message_id == message.message_id))
    if seen is not None:
        return PositionReceipt(device.id, message.message_id, seen, duplicate=True)
    position = Position(device_id=device.id, elder_id=device.elder_id, message_id=message.message_id,
                        measured_at=message.measured_at, received_at=now, fix=message.fix(),
                        accuracy_m=message.accuracy_m, source=message.source, transport=source.value)
    session.add(position)
    await session.flush()
    crossings = await judge(session, position, device, tz=tz, merge_window=merge_window, now=now)
    return PositionReceipt(device.id, message.message_id, position.id, tuple(c.alarm_id for c in crossings))


class PositionIntake:
    """The intake as a service: its own transaction per message, committed before the receipt is returned, and
    the counts of what it took and refused (by reason) for /healthz. One per platform."""

    def __init__(self, db: Database, *, clock_skew: dt.timedelta, merge_window: dt.timedelta, tz: ZoneInfo) -> None:
        self.db = db
        self.clock_skew = clock_skew
        self.merge_window = merge_window
        self.tz = tz
        self.taken: collections.Counter[str] = collections.Counter()  # stored, duplicate, geofence_alarms
        self.refused: collections.Counter[RefusalReason] = collections.Counter()
        self._alarm_listeners: list[Callable[[], None]] = []

    def on_alarm(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` once a message that raised (or was counted on) an alarm is committed: the alarm
        distributor's wake-up, so a platform-raised alarm is offered at once, not at the next sweep."""
        self._alarm_listeners.append(listener)

    async def receive_message(self, device_id: int, raw: bytes, source: AlarmSource) -> PositionReceipt:
        """A transport's message as it came (its bytes). ``PositionRefused`` for a message that will never be
        taken; a database failure propagates (nothing was acknowledged, the device sends it again)."""
        try:
            message = parse_message(raw)
            async with self.db.transaction() as session:
                receipt = await receive(session, device_id, source, message, now=utcnow(),
                                        clock_skew=self.clock_skew, merge_window=self.merge_window, tz=self.tz)
        except PositionRefused as refused:
            self.refuse(refused.reason)
            log.warning("position.refused", reason=refused.reason.value, field=refused.field, device_id=device_id,
                        source=source.value)
            raise
        self.taken["duplicate" if receipt.duplicate else "stored"] += 1
        self.taken["geofence_alarms"] += len(receipt.alarm_ids)
        # No coordinates in the log: where a person is stays sealed in the database.
        log.info("position.received", device_id=device_id, source=source.value, duplicate=receipt.duplicate,
                 geofence_alarms=list(receipt.alarm_ids))
        if not receipt.duplicate and receipt.alarm_ids:
            for listener in self._alarm_listeners:
                listener()
        return receipt

    def refuse(self, reason: RefusalReason) -> None:
        """Count a refusal (the transport's too: a payload too large to be read)."""
        self.refused[reason] += 1

    async def health_checks(self) -> dict[str, Check]:
        refused = sum(self.refused.values())
        received = self.taken["stored"] + self.taken["duplicate"]
        facts: dict[str, object] = {"received": received, "stored": self.taken["stored"],
                                    "duplicates": self.taken["duplicate"],
                                    "geofence_alarms": self.taken["geofence_alarms"], "refused": refused}
        facts |= {f"refused_{reason.value}": self.refused[reason] for reason in RefusalReason}
        # Refusals are the devices' fault: counted, not a failure.
        return {"position_intake": Check(True, f"{received} position messages taken, {refused} refused since start",
                                         facts=facts)}


POSITION_INTAKE = web.AppKey("position_intake", PositionIntake)
