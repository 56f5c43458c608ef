"""SCAIP (SS 91100) without sockets: the <mrq> parser (units' real messages, malformed XML, an XXE attempt and an
entity bomb refused before anything is expanded), the mapping of dty/stc/mty to the platform's alarms, and the
transport's service on both databases — an alarm is committed with its work order before the <mrs> is sent, a
resent ref gets the same answer without a second alarm, unknown and retired units are answered "not treated"."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.alarms.intake import RefusalReason
from callcenter.alarms.models import Alarm, AlarmMessage, AlarmSource, AlarmType
from callcenter.alarms.scaip import (
    CONTENT_TYPE,
    MAX_BODY_BYTES,
    USER_EVENT,
    Delivery,
    MessageType,
    ScaipAlarms,
    ScaipError,
    StatusNumber,
    alarm_type_of,
    delivery_of,
    device_message,
    parse_request,
    response_body,
)
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceStatus
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.telephony.ami import AmiEvent, AmiNotConnected
from tests.unit.alarms.factory import household, intake

# As units in the field send them (public integrations quote these: Essence, Possum, Telealarm, Doro).
ESSENCE_ALARM = (b"<mrq><ref>00001883</ref><cha>0</cha><mty>ME</mty><cid>26317</cid><dty>02</dty><did>00</did>"
                 b"<crd>gsm:+37284463906</crd><stc>010</stc></mrq>")
ESSENCE_HEARTBEAT = (b"<mrq><ref>00001A85</ref><cha>0</cha><mty>PI</mty><cid>26317</cid><dty>02</dty><did>00</did>"
                     b"<crd>no-voice:</crd><stc>102</stc></mrq>")
POSSUM_ALARM = b"<mrq><ref>1193308443</ref><cid>10149471</cid><dty>3</dty><stc>10</stc><crd>gsm:</crd></mrq>"
TELEALARM_MALFUNCTION = (b"<mrq><ref>lmepivnFqmI8Jvv1</ref><cid>999998</cid><dty>0002</dty><mty>ME</mty>"
                         b"<stc>0067</stc><crd>gsm:</crd><cha>0</cha></mrq>")
DORO_ALARM = b"<mrq><ref>803137200003</ref><mty>ME</mty><cid> 8031372</cid><dty>0004</dty><stc>0010</stc></mrq>"
FALL_WITH_POSITION = (b'<?xml version="1.0" encoding="UTF-8"?>\n<mrq>\n  <ver>01.00</ver>\n  <ref>fall0001</ref>\n'
                      b"  <cid>4670000001</cid>\n  <dty>0005</dty>\n  <mty>ME</mty>\n  <stc>0009</stc>\n"
                      b"  <pri>1</pri>\n  <lco>035</lco>\n  <lge><geo>59.3293,18.0686</geo></lge>\n</mrq>\n")
NOW = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


def _refusal(raw: bytes) -> ScaipError:
    with pytest.raises(ScaipError) as refused:
        parse_request(raw)
    return refused.value


# -- the parser ------------------------------------------------------------------------------------------------------

def test_units_real_messages_are_read_with_their_codes_as_numbers() -> None:
    essence = parse_request(ESSENCE_ALARM)
    assert (essence.ref, essence.cid, essence.dty, essence.stc, essence.mty) == ("00001883", "26317", 2, 10,
                                                                                 MessageType.ALARM)
    assert essence.crd == ("gsm:+37284463906",) and essence.fields["did"] == "00"
    possum = parse_request(POSSUM_ALARM)  # no <mty>: an alarm
    assert (possum.mty, possum.dty, possum.stc) == (MessageType.ALARM, 3, 10)
    assert parse_request(DORO_ALARM).cid == "8031372"  # its blank trimmed
    heartbeat = parse_request(ESSENCE_HEARTBEAT)
    assert (heartbeat.mty, heartbeat.stc) == (MessageType.HEARTBEAT, 102)
    fall = parse_request(FALL_WITH_POSITION)
    assert (fall.dty, fall.stc, fall.geo) == (5, 9, (59.3293, 18.0686))


@pytest.mark.parametrize(("raw", "status", "field"), [
    (b"<mrq><ref>1</ref><cid>2</cid><dty>5</dty>", StatusNumber.INVALID_FORMAT, None),  # cut short
    (b"not xml at all", StatusNumber.INVALID_FORMAT, None),
    (b"", StatusNumber.INVALID_FORMAT, None),
    (b"<mrs><ref>1</ref><snu>0</snu></mrs>", StatusNumber.INVALID_FORMAT, None),  # a response is no request
    (b"<mrq><ref>r1</ref><dty>5</dty></mrq>", StatusNumber.MANDATORY_TAG_MISSING, "cid"),
    (b"<mrq><cid>1</cid><dty>5</dty></mrq>", StatusNumber.MANDATORY_TAG_MISSING, "ref"),
    (b"<mrq><ref>r1</ref><cid>1</cid><dty>fall</dty></mrq>", StatusNumber.WRONG_DATA_CONTENT, "dty"),
    (b"<mrq><ref>r1</ref><cid>1</cid><dty>5</dty><mty>XX</mty></mrq>", StatusNumber.WRONG_DATA_CONTENT, "mty"),
    (b"<mrq><ref>r-1!</ref><cid>1</cid><dty>5</dty></mrq>", StatusNumber.WRONG_DATA_CONTENT, "ref"),
    (b"<mrq><ref>r1</ref><cid>1</cid><dty>5</dty><lge><geo>91.5,18.0</geo></lge></mrq>",
     StatusNumber.WRONG_DATA_CONTENT, "lge/geo"),
    (b"<mrq>" + b"<x>1</x>" * 100 + b"</mrq>", StatusNumber.INVALID_FORMAT, None),
    (b"<mrq><a><b><c>deep</c></b></a></mrq>", StatusNumber.INVALID_FORMAT, None),
])
def test_malformed_requests_are_refused_with_the_status_number_to_answer(raw: bytes, status: StatusNumber,
                                                                         field: str | None) -> None:
    refused = _refusal(raw)
    assert refused.status is status and refused.field == field


def test_a_refusal_echoes_the_ref_when_it_could_be_read() -> None:
    assert _refusal(b"<mrq><ref>abc123</ref><dty>5</dty></mrq>").ref == "abc123"
    assert _refusal(b"<mrq><ref>abc123</ref><cid>1</cid>").ref is None  # not well-formed: nothing is trusted


def test_an_oversized_body_is_refused_unread() -> None:
    refused = _refusal(b"<mrq>" + b" " * MAX_BODY_BYTES + b"</mrq>")
    assert refused.status is StatusNumber.MESSAGE_TOO_LONG and refused.reason is RefusalReason.OVERSIZED


@pytest.mark.parametrize("raw", [
    # XXE: an external entity naming a local file, and one naming a URL
    b'<?xml version="1.0"?><!DOCTYPE mrq [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<mrq><ref>x1</ref><cid>1</cid><dty>5</dty><stt>&xxe;</stt></mrq>",
    b'<!DOCTYPE mrq [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]><mrq><ref>x1</ref><cid>1</cid><dty>5</dty>'
    b"<stt>&xxe;</stt></mrq>",
    # an external DTD, and a parameter entity
    b'<!DOCTYPE mrq SYSTEM "file:///etc/passwd"><mrq><ref>x1</ref><cid>1</cid><dty>5</dty></mrq>',
    b'<!DOCTYPE mrq [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><mrq><ref>x1</ref><cid>1</cid><dty>5</dty></mrq>',
    # the billion laughs
    b'<!DOCTYPE mrq [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><mrq><ref>x1</ref><cid>1</cid><dty>5</dty><ite>&c;</ite></mrq>',
    # a plain DOCTYPE: SCAIP has none
    b"<!DOCTYPE mrq><mrq><ref>x1</ref><cid>1</cid><dty>5</dty></mrq>",
])
def test_dtds_and_entities_are_refused_before_anything_is_expanded_or_fetched(raw: bytes) -> None:
    refused = _refusal(raw)
    assert refused.status is StatusNumber.INVALID_FORMAT and refused.reason is RefusalReason.MALFORMED
    assert "DTD or entity" in refused.text


def test_the_response_is_an_mrs_with_the_ref_and_status_number_escaped() -> None:
    assert response_body("00001883", StatusNumber.OK) == (
        b'<?xml version="1.0" encoding="UTF-8"?><mrs><ref>00001883</ref><snu>0</snu></mrs>')
    refused = response_body(None, StatusNumber.WRONG_DATA_CONTENT, "dty <is> & 'bad'" + "x" * 200)
    assert b"<ref></ref><snu>3</snu><ste>dty &lt;is&gt; &amp; 'bad'" in refused
    assert len(refused.split(b"<ste>")[1].split(b"</ste>")[0]) <= 128 + 12  # at most 128 characters, escaped


# -- the mapping -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("dty", "stc", "mty", "expected"), [
    (5, 9, "ME", AlarmType.FALL),  # fall detector, automatic alarm
    (30, 9, "ME", AlarmType.FALL),  # man-down detector
    (23, 9, "ME", AlarmType.SMOKE),
    (25, 100, "ME", AlarmType.SMOKE),  # heat detector, temperature high
    (21, 9, "ME", AlarmType.GAS),
    (26, 9, "ME", AlarmType.GAS),  # carbon monoxide
    (33, 9, "ME", AlarmType.WATER_LEAK),
    (14, 77, "ME", AlarmType.DOOR_OPEN_NIGHT),  # door sensor, open too long
    (12, 3, "ME", AlarmType.BED_EXIT),  # bed monitor, absent
    (10, 104, "ME", AlarmType.INACTIVITY),  # activity detector, time out
    (15, 9, "ME", AlarmType.GEOFENCE),  # wandering sensor
    (19, 46, "ME", AlarmType.VITAL_SIGN),  # heart rate monitor, high level
    (2, 10, "ME", AlarmType.SOS_SILENT),  # the unit's own button
    (3, 10, "ME", AlarmType.SOS_SILENT),  # personal trigger (a pendant)
    (17, 9, "ME", AlarmType.SOS_SILENT),  # epilepsy detector: no type of its own, still an agent's alarm
    (4, 1234, "ME", AlarmType.SOS_SILENT),  # a status code no table knows: an alarm, never dropped
    (4, None, "ME", AlarmType.SOS_SILENT),  # no stc at all
    (5, 102, "ME", None),  # test transmission
    (3, 16, "ME", None),  # battery low
    (2, 67, "ME", None),  # malfunction
    (3, 19, "ME", None),  # cancel
    (5, 9, "RE", None),  # the alarm reset at the unit
    (5, 9, "IN", None),
    (2, 102, "PI", None),
])
def test_dty_stc_and_mty_map_to_the_platforms_alarm_types(dty: int, stc: int | None, mty: str,
                                                          expected: AlarmType | None) -> None:
    fields = f"<ref>r1</ref><cid>1</cid><dty>{dty}</dty><mty>{mty}</mty>" + (f"<stc>{stc}</stc>" if stc else "")
    assert alarm_type_of(parse_request(f"<mrq>{fields}</mrq>".encode())) is expected


def test_an_alarm_becomes_the_intakes_message_with_its_codes_and_position() -> None:
    message = device_message(parse_request(FALL_WITH_POSITION), received_at=NOW)
    assert message is not None
    assert (message.type, message.occurred_at, message.message_id) == (AlarmType.FALL, NOW, "scaip-20261207-fall0001")
    assert message.position is not None and (message.position.lat, message.position.lon) == (59.3293, 18.0686)
    assert message.extra == {"scaip": {"ref": "fall0001", "cid": "4670000001", "dty": "0005", "mty": "ME",
                                       "stc": "0009", "pri": "1", "lco": "035"}}
    assert device_message(parse_request(ESSENCE_HEARTBEAT), received_at=NOW) is None
    # The same ref on another day is another message (a unit whose counter restarted), on the same day the same.
    later = device_message(parse_request(FALL_WITH_POSITION), received_at=NOW + dt.timedelta(days=1))
    assert later is not None and later.message_id == "scaip-20261208-fall0001"


# -- the transport's parts -------------------------------------------------------------------------------------------

def _event(body: bytes, *, sender: str = '"Unit" <sip:{user}@127.0.0.1>', user: str = "unit-1",
           name: str = USER_EVENT) -> AmiEvent:
    return AmiEvent({"Event": "UserEvent", "UserEvent": name,
                     "From": base64.b64encode(sender.format(user=user).encode()).decode(),
                     "Body": base64.b64encode(body).decode()})


def test_the_dialplans_event_gives_the_endpoint_it_authenticated_and_the_body() -> None:
    delivery = delivery_of(_event(POSSUM_ALARM))
    assert delivery == Delivery("unit-1", POSSUM_ALARM)
    assert delivery.reply_destination() == "pjsip:unit-1"  # its registered contact
    assert delivery_of(_event(POSSUM_ALARM, sender="<sips:{user}@[2001:db8::1]:5061;transport=tls>")) == delivery
    assert delivery_of(_event(POSSUM_ALARM, sender="sip:{user}@127.0.0.1")) == delivery  # an addr-spec
    assert delivery_of(_event(POSSUM_ALARM, sender="<tel:+4670000>")) is None
    # The display name is the unit's own text: it never names the endpoint.
    spoofed = delivery_of(_event(POSSUM_ALARM, sender='"sip:victim-unit@h <sip:victim-unit@h>" <sip:{user}@h>'))
    assert spoofed is not None and spoofed.endpoint == "unit-1"
    assert delivery_of(_event(POSSUM_ALARM, sender='"sip:victim-unit@h" <tel:+4670000>')) is None
    assert delivery_of(_event(POSSUM_ALARM, user="a/b")) is None
    assert delivery_of(_event(POSSUM_ALARM, user="-x")) is None
    broken = _event(POSSUM_ALARM)
    broken["Body"] = "not base64!"
    assert delivery_of(broken) is None


# -- the service, on both databases ----------------------------------------------------------------------------------

async def _endpoint(db: Database, device_id: int) -> str:
    async with db.transaction(read_only=True) as session:
        return str(await session.scalar(select(Device.sip_username).where(Device.id == device_id)))


async def _count(db: Database, model: Any) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class _Ami:
    """The AMI's send_action as the service sees it: records each action with what the database held then."""

    def __init__(self, db: Database, *, fail: bool = False) -> None:
        self.db = db
        self.fail = fail
        self.sent: list[tuple[dict[str, str], int]] = []

    async def __call__(self, action: dict[str, str]) -> object:
        self.sent.append((action, await _count(self.db, Alarm)))
        if self.fail:
            raise AmiNotConnected("AMI is not connected")
        return AmiEvent({"Response": "Success"})

    def answer(self, index: int = -1) -> bytes:
        return base64.b64decode(self.sent[index][0]["Base64Body"])


async def test_an_alarm_is_committed_with_its_work_order_before_the_mrs_is_sent(db: Database) -> None:
    home = await household(db)
    endpoint = await _endpoint(db, home.device_id)
    ami = _Ami(db)
    service = ScaipAlarms(intake(db), ami)
    await service.handle(_event(FALL_WITH_POSITION, user=endpoint))

    action, alarms_when_sent = ami.sent[0]
    assert action["Action"] == "MessageSend" and alarms_when_sent == 1  # committed first
    assert action["Destination"] == f"pjsip:{endpoint}"
    assert action["Variable"] == f"Content-Type={CONTENT_TYPE}"
    assert ami.answer() == b'<?xml version="1.0" encoding="UTF-8"?><mrs><ref>fall0001</ref><snu>0</snu></mrs>'
    async with db.transaction(read_only=True) as session:
        alarm = (await session.scalars(select(Alarm))).one()
        order = await session.get(WorkOrder, alarm.work_order_id)
    assert (alarm.type, alarm.source, alarm.device_id, alarm.elder_id) == (AlarmType.FALL, AlarmSource.SCAIP,
                                                                           home.device_id, home.elder_id)
    assert alarm.location is not None and alarm.location["latitude"] == 59.3293
    assert alarm.payload["scaip"]["dty"] == "0005" and alarm.device_message_id.endswith("-fall0001")
    assert order is not None and order.kind is WorkOrderKind.EMERGENCY

    # The unit did not get the answer and sends the same request again: the same answer, nothing stored twice.
    await service.handle(_event(FALL_WITH_POSITION, user=endpoint))
    assert ami.answer() == ami.answer(0)
    assert (await _count(db, Alarm), await _count(db, AlarmMessage)) == (1, 1)
    assert service.intake.taken["duplicate"] == 1


async def test_heartbeats_and_technical_states_are_answered_without_an_alarm(db: Database) -> None:
    home = await household(db)
    endpoint = await _endpoint(db, home.device_id)
    ami = _Ami(db)
    service = ScaipAlarms(intake(db), ami)
    for body in (ESSENCE_HEARTBEAT, TELEALARM_MALFUNCTION):
        await service.handle(_event(body, user=endpoint))
        assert b"<snu>0</snu>" in ami.answer()
    assert [ami.answer(0).split(b"<ref>")[1][:8], ami.answer(1).split(b"<ref>")[1][:16]] == [
        b"00001A85", b"lmepivnFqmI8Jvv1"]
    assert await _count(db, Alarm) == 0


async def test_unknown_and_retired_units_and_bad_requests_are_answered_and_nothing_is_stored(db: Database) -> None:
    retired = await household(db, status=DeviceStatus.RETIRED)
    home = await household(db)
    ami = _Ami(db)
    service = ScaipAlarms(intake(db), ami)

    await service.handle(_event(POSSUM_ALARM, user="nobody-here"))
    assert ami.answer() == (b'<?xml version="1.0" encoding="UTF-8"?><mrs><ref>1193308443</ref><snu>5</snu>'
                            b"<ste>unknown device</ste></mrs>")
    await service.handle(_event(POSSUM_ALARM, user=await _endpoint(db, retired.device_id)))
    assert b"<snu>5</snu><ste>device retired</ste>" in ami.answer()
    endpoint = await _endpoint(db, home.device_id)
    await service.handle(_event(b"<mrq><ref>r9</ref><cid>1</cid>", user=endpoint))
    assert b"<ref></ref><snu>2</snu>" in ami.answer()
    await service.handle(_event(b"<mrq><ref>r9</ref><dty>5</dty></mrq>", user=endpoint))
    assert b"<ref>r9</ref><snu>7</snu><ste>missing cid</ste>" in ami.answer()
    xxe = b'<!DOCTYPE mrq [<!ENTITY x SYSTEM "file:///etc/passwd">]><mrq><ref>r9</ref><cid>1</cid><dty>5</dty></mrq>'
    await service.handle(_event(xxe, user=endpoint))
    assert b"<snu>2</snu>" in ami.answer()

    assert await _count(db, Alarm) == 0
    refused = service.intake.refused
    assert (refused[RefusalReason.UNKNOWN_DEVICE], refused[RefusalReason.DEVICE_RETIRED],
            refused[RefusalReason.MALFORMED], refused[RefusalReason.INVALID_FIELD]) == (1, 1, 2, 1)


async def test_other_user_events_and_a_lost_ami_leave_nothing_half_done(db: Database) -> None:
    home = await household(db)
    endpoint = await _endpoint(db, home.device_id)
    ami = _Ami(db, fail=True)
    service = ScaipAlarms(intake(db), ami)
    await service.handle(_event(POSSUM_ALARM, user=endpoint, name="CcSosStep"))
    assert ami.sent == []
    # The answer cannot be sent: the alarm stays stored, and the unit's resend is answered from it.
    await service.handle(_event(POSSUM_ALARM, user=endpoint))
    ami.fail = False
    await service.handle(_event(POSSUM_ALARM, user=endpoint))
    assert [b"<snu>0</snu>" in base64.b64decode(action["Base64Body"]) for action, _ in ami.sent] == [True, True]
    assert await _count(db, Alarm) == 1


async def test_a_database_failure_answers_nothing(db: Database) -> None:
    home = await household(db)
    endpoint = await _endpoint(db, home.device_id)
    ami = _Ami(db)
    service = ScaipAlarms(intake(db), ami)
    await db.dispose()
    broken = Database("sqlite+aiosqlite:////nonexistent-dir/none.db")
    service.intake.db = broken
    try:
        await service.handle(_event(POSSUM_ALARM, user=endpoint))
    finally:
        await broken.dispose()
    assert ami.sent == []  # the unit hears nothing and sends again (or to its secondary centre)
