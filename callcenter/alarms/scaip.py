"""SCAIP (SS 91100:2014, the Nordic social-alarm protocol; CLC/TS 50134-9) alarms over SIP MESSAGE.

A social-alarm unit (an SCAIP *controller*) sends its alarms, resets, information messages and heartbeats as an
XML ``<mrq>`` in the body of a SIP MESSAGE. The unit is a device's PJSIP endpoint: Asterisk authenticates it (its
digest, like its calls) and hands the MESSAGE to the dialplan's device message context (``cc-device-messages``),
which announces it to the platform as UserEvent ``CcScaip`` — the From and the body, base64-encoded. This module
parses the ``<mrq>`` without ever expanding a DTD or an entity, maps it to the platform's alarm (``device_message``:
dty, stc and mty to an alarm type, docs/device-protocol.md "SCAIP"), hands it to the alarm intake, and answers the
unit with an ``<mrs>`` (ref echoed, snu = status number) in a SIP MESSAGE of its own, sent with the AMI action
MessageSend to the unit's registered contact — only once the intake has committed the alarm.

Why a MESSAGE of its own: Asterisk answers an out-of-dialog MESSAGE ``202 Accepted`` itself, before the dialplan
runs, with no body; the ``<mrs>`` cannot ride on it. Units wait for the ``<mrs>`` (matched by ``ref``) and send
again, or to their secondary centre, when it does not come. A database failure therefore answers nothing.

Asterisk 22's limit: it takes an out-of-dialog MESSAGE only as ``text/plain`` and answers any other Content-Type,
``application/scaip+xml`` included, 415 before the dialplan sees it. Units must be set to send text/plain, or a SIP
proxy in front must relabel the body (docs/device-protocol.md says what is and is not done).

Exactly once: the unit's ``ref`` (the request's reference, echoed in the response; ``snu`` is the response's status
number, not a sequence number) is the message id, per device and UTC day of receipt — a unit resending an
unanswered alarm gets the first receipt's answer, and a unit whose counter starts again after a reset cannot have a
new alarm mistaken for one it sent on an earlier day (a resend across midnight is merged into the open alarm).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from xml.parsers import expat

from pydantic import ValidationError
from sqlalchemy import select

from callcenter.alarms.intake import AlarmIntake, AlarmRefused, DeviceAlarm, RefusalReason
from callcenter.alarms.models import AlarmSource, AlarmType, LocationSource
from callcenter.alarms.schemas import DeviceAlarmMessage, DevicePosition
from callcenter.contract import AmiSubscription, on_ami
from callcenter.db.base import utcnow
from callcenter.devices.models import Device, DeviceStatus
from callcenter.logs import get_logger
from callcenter.telephony.ami import AmiError, AmiEvent

log = get_logger(__name__)

CONTENT_TYPE = "application/scaip+xml"  # IANA-registered for SS 91100 (2014)
USER_EVENT = "CcScaip"  # dialplans/extensions.conf.j2, [cc-device-messages]
# Asterisk passes at most 1023 bytes of a MESSAGE's body to the dialplan (res_pjsip_messaging's buffer); SCAIP
# requests are a few hundred. A longer body arriving by another path is refused as too long (snu 1).
MAX_BODY_BYTES = 4096
MAX_ELEMENTS = 64  # an <mrq> has about 25 possible elements; a flood of them is no alarm
MAX_DEPTH = 3  # <mrq>, its fields, and <lge>'s


class StatusNumber(enum.IntEnum):
    """``<snu>`` of a response (SS 91100): 0 is the only acceptance."""

    OK = 0
    MESSAGE_TOO_LONG = 1
    INVALID_FORMAT = 2
    WRONG_DATA_CONTENT = 3
    HOLD = 4
    NOT_TREATED = 5
    BUSY = 6
    MANDATORY_TAG_MISSING = 7


class MessageType(enum.StrEnum):
    """``<mty>``: absent means ME."""

    ALARM = "ME"
    RESET = "RE"  # the alarm withdrawn at the unit
    INFORMATION = "IN"  # more about an alarm already sent
    HEARTBEAT = "PI"


class ScaipError(Exception):
    """The request cannot be taken: answered with ``status`` (never 0) and ``text``; ``ref`` when it was read."""

    def __init__(self, status: StatusNumber, text: str, *, ref: str | None = None,
                 reason: RefusalReason = RefusalReason.INVALID_FIELD, field: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.ref = ref
        self.reason = reason  # what the intake's refusal counters call it
        self.field = field


# Each field's form (the xsd of SS 91100 as public implementations carry it, e.g. caruhome/scaip-gateway). Leading
# and trailing blanks are dropped first: units in the field send "<cid> 8031372</cid>".
_FIELDS: Mapping[str, re.Pattern[str]] = {
    "ref": re.compile(r"[0-9A-Za-z]{1,16}"),
    "ver": re.compile(r"[0-9]{2}\.[0-9]{2}"),
    "sco": re.compile(r"[0-9]"),
    "cha": re.compile(r"[0-9]"),
    "mty": re.compile(r"ME|RE|IN|PI"),
    "hbo": re.compile(r"[0-9]{1,3}"),
    "cid": re.compile(r"\+?[0-9]{1,16}"),
    "dty": re.compile(r"[0-9]{1,4}"),
    "did": re.compile(r".{1,8}", re.S),
    "dco": re.compile(r"[0-9]{1,3}"),
    "dte": re.compile(r".{1,32}", re.S),
    "crd": re.compile(r".{1,256}", re.S),
    "stc": re.compile(r"[0-9]{1,4}"),
    "stt": re.compile(r".{1,32}", re.S),
    "pri": re.compile(r"[0-9]"),
    "lco": re.compile(r"[0-9]{1,3}"),
    "lva": re.compile(r".{1,2}", re.S),
    "lte": re.compile(r".{1,32}", re.S),
    "ico": re.compile(r"[0-9]{1,3}"),
    "ite": re.compile(r".{1,128}", re.S),
    "ame": re.compile(r"[01]?"),
}
_GEO_FIELDS: Mapping[str, re.Pattern[str]] = {
    "geo": re.compile(r"-?[0-9]{1,2}(\.[0-9]+)?,-?[0-9]{1,3}(\.[0-9]+)?"),  # "lat,lon", WGS-84 degrees
    "tim": re.compile(r"[0-9:T+\-]{10,25}"),
    "gga": re.compile(r".{0,81}", re.S),
}
MANDATORY = ("ref", "cid", "dty")


@dataclasses.dataclass(frozen=True, slots=True)
class ScaipRequest:
    """An ``<mrq>`` as the unit sent it (codes as numbers: "02", "0002" and "2" are one device type)."""

    ref: str
    cid: str  # the controller (unit) id, configured at installation
    dty: int  # device type (SS 91100 table; DEVICE_TYPES)
    mty: MessageType
    stc: int | None  # status code (ALARM_STATUSES / TECHNICAL_STATUSES); absent on some heartbeats
    fields: Mapping[str, str]  # every field it carried, as sent (blanks trimmed)
    crd: tuple[str, ...] = ()  # caller ids for a voice call ("gsm:+46…", "sip:…", "no-voice:"); may repeat
    geo: tuple[float, float] | None = None  # <lge><geo>: latitude, longitude

    def code(self, name: str) -> int | None:
        value = self.fields.get(name)
        return int(value) if value is not None and value.isdigit() else None


def _decline_dtd(*_: object) -> None:
    raise ScaipError(StatusNumber.INVALID_FORMAT, "a DTD or entity declaration is not accepted",
                     reason=RefusalReason.MALFORMED)


def _elements(raw: bytes) -> tuple[str, list[tuple[tuple[str, ...], str]]]:
    """The root's name and its leaves as (path under the root, text): expat with DTDs, entities and external
    references refused outright (no XXE, no entity expansion), depth and element count bounded."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _decline_dtd
    parser.EntityDeclHandler = _decline_dtd
    parser.UnparsedEntityDeclHandler = _decline_dtd
    parser.ExternalEntityRefHandler = _decline_dtd  # type: ignore[assignment]
    stack: list[str] = []
    texts: list[list[str]] = []
    leaves: list[tuple[tuple[str, ...], str]] = []
    root: list[str] = []
    count = 0

    def start(name: str, _attributes: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS or len(stack) >= MAX_DEPTH:
            raise ScaipError(StatusNumber.INVALID_FORMAT, "too many or too deeply nested elements",
                             reason=RefusalReason.MALFORMED)
        if not stack:
            root.append(name)
        stack.append(name)
        texts.append([])

    def end(_name: str) -> None:
        text = "".join(texts.pop())
        path = tuple(stack[1:])
        stack.pop()
        if path:
            leaves.append((path, text))

    def data(text: str) -> None:
        if texts:
            texts[-1].append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as error:
        raise ScaipError(StatusNumber.INVALID_FORMAT, f"not well-formed XML ({expat.errors.messages[error.code]})",
                         reason=RefusalReason.MALFORMED) from None
    return root[0], leaves


def _ref_of(leaves: list[tuple[tuple[str, ...], str]]) -> str | None:
    for path, text in leaves:
        if path == ("ref",) and _FIELDS["ref"].fullmatch(text.strip()):
            return text.strip()
    return None


def parse_request(raw: bytes) -> ScaipRequest:
    """The body of a unit's MESSAGE as a ``ScaipRequest``, or ``ScaipError`` with the status number to answer."""
    if len(raw) > MAX_BODY_BYTES:
        raise ScaipError(StatusNumber.MESSAGE_TOO_LONG, f"{len(raw)} bytes; at most {MAX_BODY_BYTES}",
                         reason=RefusalReason.OVERSIZED)
    root, leaves = _elements(raw)
    ref = _ref_of(leaves)
    if root != "mrq":
        raise ScaipError(StatusNumber.INVALID_FORMAT, f"the root element is <{root}>, not <mrq>", ref=ref,
                         reason=RefusalReason.MALFORMED)
    fields: dict[str, str] = {}
    crd: list[str] = []
    geo_fields: dict[str, str] = {}
    for path, text in leaves:
        value = text.strip()
        if len(path) == 2 and path[0] == "lge":
            pattern = _GEO_FIELDS.get(path[1])
            if pattern is None:
                continue
            if not pattern.fullmatch(value):
                raise ScaipError(StatusNumber.WRONG_DATA_CONTENT, f"lge/{path[1]} is not in its form", ref=ref,
                                 field=f"lge/{path[1]}")
            geo_fields.setdefault(path[1], value)
            continue
        if len(path) != 1:
            continue
        name = path[0]
        field_pattern = _FIELDS.get(name)
        if field_pattern is None:  # an element of a later version, or a vendor's: ignored
            continue
        if not field_pattern.fullmatch(value):
            if value == "" and name not in MANDATORY:
                continue  # an empty optional element says nothing
            raise ScaipError(StatusNumber.WRONG_DATA_CONTENT, f"{name} is not in its form", ref=ref, field=name)
        if name == "crd":
            crd.append(value)
        fields.setdefault(name, value)
    missing = [name for name in MANDATORY if name not in fields]
    if missing:
        raise ScaipError(StatusNumber.MANDATORY_TAG_MISSING, f"missing {', '.join(missing)}", ref=ref,
                         field=missing[0])
    geo: tuple[float, float] | None = None
    if "geo" in geo_fields:
        latitude, longitude = (float(part) for part in geo_fields["geo"].split(","))
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ScaipError(StatusNumber.WRONG_DATA_CONTENT, "lge/geo is out of range", ref=ref, field="lge/geo")
        geo = (latitude, longitude)
    stc = fields.get("stc")
    return ScaipRequest(ref=fields["ref"], cid=fields["cid"].lstrip("+"), dty=int(fields["dty"]),
                        mty=MessageType(fields.get("mty", MessageType.ALARM.value)),
                        stc=int(stc) if stc is not None else None, fields=fields, crd=tuple(crd), geo=geo)


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def response_body(ref: str | None, status: StatusNumber, text: str | None = None) -> bytes:
    """The ``<mrs>`` answering a request: its ref (empty when it could not be read), the status number and, on a
    refusal, the status text (at most 128 characters). No media reply: the centre does not ask the unit for a voice
    call here — the elder's call, when the unit makes one, is an ordinary SOS call."""
    parts = [f"<ref>{_xml_text(ref or '')}</ref>", f"<snu>{int(status)}</snu>"]
    if text:
        parts.append(f"<ste>{_xml_text(text[:128])}</ste>")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><mrs>" + "".join(parts) + "</mrs>").encode()


# --- mapping to the platform's alarms (the table in docs/device-protocol.md, "SCAIP") -----------------------------

# dty (SS 91100 device types) → the platform's alarm type. Any other device type raising an alarm status is a
# silent SOS: every alarm reaches an agent, with its SCAIP codes in the payload.
DEVICE_TYPES: Mapping[int, AlarmType] = {
    5: AlarmType.FALL,  # fall detector
    30: AlarmType.FALL,  # automatic man-down detector
    10: AlarmType.INACTIVITY,  # activity detector
    18: AlarmType.INACTIVITY,  # occupancy detector
    23: AlarmType.SMOKE,  # smoke detector
    25: AlarmType.SMOKE,  # heat detector
    37: AlarmType.SMOKE,  # sprinkler
    47: AlarmType.SMOKE,  # fire alarm system
    21: AlarmType.GAS,  # gas detector
    26: AlarmType.GAS,  # carbon monoxide detector
    33: AlarmType.WATER_LEAK,  # flood detector
    34: AlarmType.WATER_LEAK,  # bath sensor (overflow)
    14: AlarmType.DOOR_OPEN_NIGHT,  # door sensor
    12: AlarmType.BED_EXIT,  # bed monitor
    13: AlarmType.BED_EXIT,  # mat sensor
    44: AlarmType.BED_EXIT,  # chair monitor
    15: AlarmType.GEOFENCE,  # wandering sensor
    29: AlarmType.GEOFENCE,  # boundary detector
    19: AlarmType.VITAL_SIGN,  # heart rate monitor
}
# stc of an ME that reports the unit's own state rather than an emergency: answered, no alarm raised (battery,
# power, links, tests, cancel, restorals, resets, normal state).
TECHNICAL_STATUSES = frozenset({
    4, 5, 12, 14, 15, 16, 19, 20, 23, 24, 25, 26, 27, 30, 31, 41, 48, 62, 65, 66, 67, 70, 72, 73, 74, 75, 78, 85,
    86, 91, 92, 93, 94, 96, 97, 99, 102, 103, 111, 112, 113, 114, 115, 116, 123, 124,
})


def alarm_type_of(request: ScaipRequest) -> AlarmType | None:
    """The alarm an ME raises, or None for what is answered only: resets, information, heartbeats and technical
    states. An ME whose stc is anything else (an alarm, or a code this table does not know) is an alarm."""
    if request.mty is not MessageType.ALARM:
        return None
    if request.stc is not None and request.stc in TECHNICAL_STATUSES:
        return None
    return DEVICE_TYPES.get(request.dty, AlarmType.SOS_SILENT)


def device_message(request: ScaipRequest, *, received_at: dt.datetime) -> DeviceAlarmMessage | None:
    """The intake's message for an alarm request (None: nothing to store). SCAIP carries no time of the event: the
    platform's time of receipt stands in for it."""
    alarm_type = alarm_type_of(request)
    if alarm_type is None:
        return None
    scaip: dict[str, Any] = {"ref": request.ref, "cid": request.cid, "dty": f"{request.dty:04d}",
                             "mty": request.mty.value}
    if request.stc is not None:
        scaip["stc"] = f"{request.stc:04d}"
    for name in ("did", "dco", "dte", "stt", "pri", "lco", "lva", "lte", "ico", "ite"):
        if name in request.fields:
            scaip[name] = request.fields[name]
    if request.crd:
        scaip["crd"] = list(request.crd)
    position = None
    if request.geo is not None:
        position = DevicePosition(lat=request.geo[0], lon=request.geo[1], source=LocationSource.GPS)
    day = received_at.astimezone(dt.UTC).strftime("%Y%m%d")
    try:
        return DeviceAlarmMessage(message_id=f"scaip-{day}-{request.ref}", type=alarm_type, occurred_at=received_at,
                                  position=position, extra={"scaip": scaip})
    except ValidationError as invalid:  # the extra over its bound: the fields' forms make this all but impossible
        raise ScaipError(StatusNumber.MESSAGE_TOO_LONG, str(invalid.errors()[0]["msg"]), ref=request.ref) from None


# --- the transport: UserEvent CcScaip in, MessageSend out -----------------------------------------------------------

_ENDPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FROM_USER = re.compile(r"sips?:([^@;>\s]+)@", re.I)  # the user of the From's URI

SendAction = Callable[[dict[str, str]], Awaitable[object]]


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """A unit's MESSAGE as the dialplan announced it: the endpoint it authenticated as, and the body."""

    endpoint: str
    body: bytes

    def reply_destination(self) -> str:
        """MessageSend's Destination: the unit's endpoint, at the contact it registered (through NAT, the address
        its REGISTER came from: rewrite_contact). A unit that is not registered cannot be answered — its alarm is
        stored all the same, and it sends it again."""
        return f"pjsip:{self.endpoint}"


def delivery_of(event: AmiEvent) -> Delivery | None:
    """The UserEvent's parts, or None when they are not what the dialplan sends (nothing to answer)."""
    try:
        sender = base64.b64decode(event.get("From", ""), validate=True).decode("utf-8", "replace")
        body = base64.b64decode(event.get("Body", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    # Asterisk identified the endpoint by the user of the From's URI (identify_by username) and checked its digest
    # for it. The URI is the name-addr's last <…>: the display name before it is the unit's to choose
    # ("sip:another-unit@…" <sip:it@…>) and must never name the endpoint.
    uri = sender[sender.rfind("<") + 1:] if "<" in sender else sender
    match = _FROM_USER.match(uri.strip())
    if match is None or not _ENDPOINT.fullmatch(match.group(1)):
        return None
    return Delivery(match.group(1), body)


class ScaipAlarms:
    """SCAIP units' requests from the AMI (one at a time, in arrival order), taken by the intake and answered.
    Socket-free: ``send`` is the AMI's ``send_action``."""

    def __init__(self, intake: AlarmIntake, send: SendAction) -> None:
        self.intake = intake
        self.send = send

    def subscription(self) -> AmiSubscription:
        return on_ami(("UserEvent",), self.handle)

    async def handle(self, event: AmiEvent) -> None:
        if event.get("UserEvent") != USER_EVENT:
            return
        delivery = delivery_of(event)
        if delivery is None:
            log.warning("scaip.unreadable_event")
            return
        answer = await self.answer(delivery.endpoint, delivery.body)
        if answer is None:
            return
        action = {"Action": "MessageSend", "Destination": delivery.reply_destination(),
                  "Base64Body": base64.b64encode(answer).decode(), "Variable": f"Content-Type={CONTENT_TYPE}"}
        try:
            await self.send(action)
        except AmiError as error:  # the unit sends again; its ref makes that harmless
            log.warning("scaip.answer_not_sent", endpoint=delivery.endpoint, error=str(error))

    async def answer(self, endpoint: str, body: bytes) -> bytes | None:
        """Take one request from the unit behind ``endpoint``: the ``<mrs>`` to send it once what it reported is
        committed, or None (a database failure: nothing is answered, the unit sends it again)."""
        received_at = utcnow()
        try:
            request = parse_request(body)
            device_id = await self._device_id(endpoint, request.ref)
            message = device_message(request, received_at=received_at)
        except ScaipError as refused:
            self.intake.refused[refused.reason] += 1
            log.warning("scaip.refused", endpoint=endpoint, status=int(refused.status), reason=refused.reason.value,
                        field=refused.field)
            return response_body(refused.ref, refused.status, refused.text)
        except Exception:
            log.exception("scaip.not_taken", endpoint=endpoint)
            return None
        if message is None:
            log.info("scaip.answered", endpoint=endpoint, device_id=device_id, mty=request.mty.value,
                     stc=request.stc, dty=request.dty)
            return response_body(request.ref, StatusNumber.OK)
        try:
            await self.intake.receive(DeviceAlarm(device_id, AlarmSource.SCAIP, message))
        except AlarmRefused as refused:  # counted by the intake; a unit gone from service, say
            return response_body(request.ref, StatusNumber.NOT_TREATED, refused.message)
        except Exception:
            log.exception("scaip.not_taken", endpoint=endpoint, device_id=device_id)
            return None
        return response_body(request.ref, StatusNumber.OK)

    async def _device_id(self, endpoint: str, ref: str) -> int:
        """The device behind the endpoint; a unit retired or gone is answered "not treated" whatever it sent."""
        async with self.intake.db.transaction(read_only=True) as session:
            found = (await session.execute(select(Device.id, Device.status)
                                           .where(Device.sip_username == endpoint))).first()
        if found is None:
            raise ScaipError(StatusNumber.NOT_TREATED, "unknown device", ref=ref,
                             reason=RefusalReason.UNKNOWN_DEVICE)
        if found.status is DeviceStatus.RETIRED:
            raise ScaipError(StatusNumber.NOT_TREATED, "device retired", ref=ref,
                             reason=RefusalReason.DEVICE_RETIRED)
        return int(found.id)
