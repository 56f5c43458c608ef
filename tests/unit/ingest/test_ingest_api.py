"""POST /api/v1/device-messages: a gateway's or vendor cloud's signed batch of device messages, each handed to its
kind's intake and answered with the acknowledgement a device gets over MQTT; ingest keys scoped to devices; every
refusal clear, counted, and leaving nothing stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from structlog.testing import capture_logs

from callcenter.alarms.intake import ALARM_INTAKE
from callcenter.alarms.models import Alarm, AlarmSource
from callcenter.api.context import TOKENS
from callcenter.audit.models import AuditEntry
from callcenter.config import ConfigError, Settings
from callcenter.contract import DEVICE_INTAKES, DeviceIntakes, on_device_message
from callcenter.db.session import Database
from callcenter.devices.models import DeviceStatus
from callcenter.ingest import services
from callcenter.ingest.models import IngestKey, IngestNonce
from callcenter.ingest.services import DEVICE_INGEST, DeviceIngest
from callcenter.recordings.backends import RECORDINGS, RecordingStores
from callcenter.recordings.storage import LocalRecordingStore
from callcenter.telephony.device_topics import DeviceAnswer
from tests.apiclient import Api, api_settings, assembled
from tests.unit.alarms.factory import household, message

URL = "/api/v1/device-messages"


async def _key(api: Api, *device_ids: int, name: str = "楼宇网关 3 号") -> dict[str, Any]:
    status, key = await api.request("POST", "/api/v1/ingest-keys", json={"name": name,
                                                                          "device_ids": list(device_ids)})
    assert status == 201, key
    return key


def _body(*items: tuple[int, str, Any]) -> bytes:
    return json.dumps({"messages": [{"device_id": device_id, "kind": kind, "message": document}
                                    for device_id, kind, document in items]}, ensure_ascii=False).encode()


async def _post(client: TestClient, key: dict[str, Any], raw: bytes, *, now: float | None = None,
                nonce: str | None = None) -> tuple[int, dict[str, Any]]:
    signed = services.sign_request(key["key_id"], key["secret"], raw, time.time() if now is None else now, nonce)
    response = await client.post(URL, data=raw, headers={**signed, "Content-Type": "application/json"})
    return response.status, await response.json()


async def _count(db: Database, model: type, *where: Any) -> int:
    async with db.transaction(read_only=True) as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _ingest(api: Api) -> DeviceIngest:
    return api.client.app[DEVICE_INGEST]


def test_the_signature_is_the_provider_apis_hmac_over_this_path() -> None:
    body = b'{"messages":[]}'
    headers = services.sign_request("ccik_0123", "s3cret", body, dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                                    "n" * 16)
    text = f"POST\n/api/v1/device-messages\n1735787045\n{'n' * 16}\n{hashlib.sha256(body).hexdigest()}"
    assert headers == {"X-CC-Key-Id": "ccik_0123", "X-CC-Timestamp": "1735787045", "X-CC-Nonce": "n" * 16,
                       "X-CC-Signature": hmac.new(b"s3cret", text.encode(), hashlib.sha256).hexdigest()}


def test_the_worked_example_of_the_device_protocol_holds() -> None:
    """docs/device-protocol.md, HTTP ingest: a gateway's developer checks their signing against these figures."""
    doc = (Path(__file__).parents[3] / "docs" / "device-protocol.md").read_text(encoding="utf-8")
    body = ('{"messages":[{"device_id":17,"kind":"alarm","message":{"message_id":"pd-0042-000731","type":"fall",'
            '"occurred_at":"2026-03-01T07:58:12+08:00"}}]}')
    headers = services.sign_request("ccik_5e1f0c2a9b3d4e6f", "x3VfP0q9rT8sLm2nZ4kY7wA1bC6dE5gH0iJ9kL8mN7o",
                                    body.encode(), 1772323095, "4b1d9c0e7a2f6358d1e4")
    for figure in (body, f"those {len(body.encode())} bytes", hashlib.sha256(body.encode()).hexdigest(),
                   headers["X-CC-Signature"], f"X-CC-Signature: {headers['X-CC-Signature']}"):
        assert figure in doc, figure


async def test_a_signed_alarm_is_stored_and_answered_like_over_mqtt_and_a_repeat_is_one_alarm(api: Api) -> None:
    home = await household(api.db)
    key = await _key(api, home.device_id)
    fall = message("gw-fall-1", position={"lat": 39.9138, "lon": 116.3636, "accuracy_m": 8, "source": "gps"})
    raw = _body((home.device_id, "alarm", fall))

    status, answer = await _post(api.client, key, raw)
    assert status == 200, answer
    [ack] = answer["answers"]
    assert set(ack) == {"message_id", "kind", "status", "received_at"}  # no reason, no field: as over MQTT
    assert (ack["message_id"], ack["kind"], ack["status"]) == ("gw-fall-1", "alarm", "stored")
    assert ack["received_at"].endswith("+08:00")
    async with api.db.transaction(read_only=True) as session:
        [alarm] = (await session.scalars(select(Alarm))).all()
        assert (alarm.source, alarm.device_id, alarm.device_message_id) == (AlarmSource.HTTP, home.device_id,
                                                                            "gw-fall-1")
        assert alarm.work_order_id is not None

    # The gateway missed the answer and sends the same message again (signed anew): stored again, one alarm.
    status, again = await _post(api.client, key, raw)
    assert status == 200 and again["answers"][0]["status"] == "stored", again
    assert await _count(api.db, Alarm) == 1
    intake = api.client.app[ALARM_INTAKE]
    assert (intake.taken["stored"], intake.taken["duplicate"]) == (1, 1)
    assert _ingest(api).answered["alarm.stored"] == 2 and _ingest(api).requests == 2


async def test_each_message_of_a_batch_is_answered_on_its_own(api: Api) -> None:
    ours = await household(api.db)
    retired = await household(api.db, status=DeviceStatus.RETIRED, name="钱桂英")
    theirs = await household(api.db, name="孙玉兰")
    key = await _key(api, ours.device_id, retired.device_id)
    await _key(api, theirs.device_id, name="另一家厂商的云")
    good = message("b-1", "smoke")
    raw = _body(
        (ours.device_id, "alarm", good),
        (ours.device_id, "alarm", {**message("b-2"), "type": 5}),  # wrong type
        (ours.device_id, "alarm", message("b-3", occurred_at=dt.datetime(2026, 3, 1, 8, 0))),  # no offset
        (ours.device_id, "alarm", {**message("b-4"), "colour": "red"}),  # unknown field
        (ours.device_id, "alarm", message("b-5", extra={"blob": "x" * 17_000})),  # over the message bound
        (theirs.device_id, "alarm", message("b-6")),  # a device of another key
        (987_654, "alarm", message("b-7")),  # no such device
        (retired.device_id, "alarm", message("b-8")),  # retired
    )
    status, answer = await _post(api.client, key, raw)
    assert status == 200, answer
    got = [(a["message_id"], a["status"], a.get("reason"), a.get("field")) for a in answer["answers"]]
    assert got == [
        ("b-1", "stored", None, None),
        ("b-2", "rejected", "invalid", "type"),
        ("b-3", "rejected", "invalid", "occurred_at"),
        ("b-4", "rejected", "invalid", "colour"),
        ("b-5", "rejected", "payload_too_large", None),
        ("b-6", "rejected", "unknown_device", None),  # exactly as a device that does not exist
        ("b-7", "rejected", "unknown_device", None),
        ("b-8", "rejected", "unknown_device", None),
    ]
    async with api.db.transaction(read_only=True) as session:
        assert (await session.scalars(select(Alarm.device_message_id))).all() == ["b-1"]
    ingest = _ingest(api)
    assert ingest.not_allowed == 2
    assert ingest.answered == {"alarm.stored": 1, "alarm.invalid": 3, "alarm.payload_too_large": 1,
                               "alarm.unknown_device": 3}
    checks = await ingest.health_checks()
    assert checks["device_ingest"].facts["not_allowed"] == 2


async def test_refused_requests_are_401_with_the_reason_counted_logged_audited_and_store_nothing(api: Api) -> None:
    home = await household(api.db)
    key = await _key(api, home.device_id)
    raw = _body((home.device_id, "alarm", message("r-1")))
    now = time.time()
    signed = services.sign_request(key["key_id"], key["secret"], raw, now, "nonce-0000000001")

    async def send(data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = await api.client.post(URL, data=data, headers={**headers, "Content-Type": "application/json"})
        return response.status, await response.json()

    cases: list[tuple[bytes, dict[str, str], str]] = [
        (raw.replace(b"fall", b"gas_"), signed, "invalid_signature"),  # not the body that was signed
        (raw, {**signed, "X-CC-Signature": "0" * 64}, "invalid_signature"),
        (raw, {k: v for k, v in signed.items() if k != "X-CC-Nonce"}, "invalid_signature"),
        (raw, {**signed, "X-CC-Key-Id": "ccik_unknown"}, "unknown_key"),
        (raw, services.sign_request(key["key_id"], key["secret"], raw, now - 360, "nonce-0000000002"),
         "stale_timestamp"),
        (raw, services.sign_request(key["key_id"], key["secret"], raw, now + 360, "nonce-0000000003"),
         "stale_timestamp"),
    ]
    with capture_logs() as logs:
        for data, headers, code in cases:
            status, answer = await send(data, headers)
            assert status == 401 and answer["error"]["code"] == code, (headers, answer)
        assert await _count(api.db, Alarm) == 0
        status, accepted = await send(raw, signed)
        assert status == 200 and accepted["answers"][0]["status"] == "stored", accepted
        status, answer = await send(raw, signed)  # the very same request again
        assert status == 401 and answer["error"]["code"] == "replayed_nonce"
        status, revoked = await api.request("DELETE", f"/api/v1/ingest-keys/{key['key_id']}")
        assert status == 200 and revoked["revoked_at"] is not None
        status, answer = await _post(api.client, key, _body((home.device_id, "alarm", message("r-2"))))
        assert status == 401 and answer["error"]["code"] == "revoked_key"
    expected = [code for _, _, code in cases] + ["replayed_nonce", "revoked_key"]
    assert [entry["reason"] for entry in logs if entry["event"] == "device_ingest.rejected"] == expected
    async with api.db.transaction(read_only=True) as session:
        audits = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "device_ingest.rejected")
                                        .order_by(AuditEntry.id))).all()
    assert [a.details["reason"] for a in audits] == expected
    assert [a.target_id for a in audits][3] == "ccik_unknown"
    assert _ingest(api).refused == {"invalid_signature": 3, "unknown_key": 1, "stale_timestamp": 2,
                                    "replayed_nonce": 1, "revoked_key": 1}
    assert await _count(api.db, Alarm) == 1  # only the one good request did anything


async def test_an_oversized_body_is_413_before_its_signature_is_read(api: Api) -> None:
    home = await household(api.db)
    key = await _key(api, home.device_id)
    limit = api.settings.ingest_max_body_bytes
    batch = [(home.device_id, "alarm", message(f"big-{n}", extra={"note": "y" * 3_000})) for n in range(100)]
    raw = _body(*batch)
    assert len(raw) > limit
    with capture_logs() as logs:
        status, answer = await _post(api.client, key, raw)
    assert status == 413 and answer["error"]["code"] == "body_too_large", answer
    assert [entry["code"] for entry in logs if entry["event"] == "device_ingest.refused"] == ["body_too_large"]
    assert _ingest(api).refused == {"body_too_large": 1}
    assert (await _count(api.db, Alarm), await _count(api.db, IngestNonce)) == (0, 0)


async def test_a_kind_no_domain_takes_is_422_naming_it_and_nothing_of_the_batch_is_taken(api: Api) -> None:
    home = await household(api.db)
    key = await _key(api, home.device_id)
    for kind in ("heartbeat", "smell"):
        raw = _body((home.device_id, "alarm", message()), (home.device_id, kind, {"sent_at": "2026-03-01T08:00Z"}))
        status, answer = await _post(api.client, key, raw)
        assert status == 422, answer
        assert (answer["error"]["code"], answer["error"]["field"]) == ("unknown_kind", "messages.1.kind")
        assert "alarm" in answer["error"]["message"]  # what is taken
    assert await _count(api.db, Alarm) == 0
    assert _ingest(api).refused == {"unknown_kind": 2}


async def test_a_signed_but_malformed_envelope_is_refused_whole_and_spends_its_nonce(api: Api) -> None:
    home = await household(api.db)
    key = await _key(api, home.device_id)
    status, answer = await _post(api.client, key, b"{not json")
    assert status == 400 and answer["error"]["code"] == "malformed_json"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"messages": []}, "messages"),
        ({"messages": [{"device_id": str(home.device_id), "kind": "alarm", "message": message()}]},
         "messages.0.device_id"),
        ({"messages": [{"device_id": home.device_id, "kind": "alarm", "message": "not an object"}]},
         "messages.0.message"),
        ({"messages": [{"device_id": home.device_id, "kind": "alarm", "message": message()}], "extra": 1},
         "extra"),
        ({"messages": [{"device_id": home.device_id, "kind": "alarm", "message": message()}] * 101}, "messages"),
    ]
    for document, field in bad:
        status, answer = await _post(api.client, key, json.dumps(document).encode())
        assert status == 422 and answer["error"]["field"] == field, (document, answer)
    assert await _count(api.db, Alarm) == 0
    assert await _count(api.db, IngestNonce) == 1 + len(bad)
    assert _ingest(api).refused == {"malformed_json": 1, "invalid": len(bad)}


async def test_ingest_keys_are_issued_scoped_rescoped_and_revoked_by_admins(api: Api) -> None:
    first = await household(api.db)
    second = await household(api.db, name="周兰芳")
    status, answer = await api.request("POST", "/api/v1/ingest-keys", json={"name": "x", "device_ids": [
        first.device_id, 987_654]})
    assert status == 422 and answer["error"]["field"] == "device_ids.1", answer
    key = await _key(api, first.device_id, first.device_id)
    assert key["key_id"].startswith("ccik_") and len(key["secret"]) >= 40
    assert key["device_ids"] == [first.device_id]
    status, listed = await api.request("GET", "/api/v1/ingest-keys")
    assert status == 200 and [k["key_id"] for k in listed["items"]] == [key["key_id"]]
    assert "secret" not in listed["items"][0]

    raw = _body((second.device_id, "alarm", message("s-1")))
    status, answer = await _post(api.client, key, raw)
    assert answer["answers"][0]["reason"] == "unknown_device"
    status, changed = await api.request("PUT", f"/api/v1/ingest-keys/{key['key_id']}/devices",
                                        json={"device_ids": [second.device_id]})
    assert status == 200 and changed["device_ids"] == [second.device_id], changed
    status, answer = await _post(api.client, key, raw)
    assert answer["answers"][0]["status"] == "stored", answer
    status, answer = await _post(api.client, key, _body((first.device_id, "alarm", message("s-2"))))
    assert answer["answers"][0]["reason"] == "unknown_device"

    status, shown = await api.request("GET", f"/api/v1/ingest-keys/{key['key_id']}")
    assert status == 200 and shown["device_ids"] == [second.device_id] and shown["revoked_at"] is None
    status, missing = await api.request("GET", "/api/v1/ingest-keys/ccik_none")
    assert status == 404 and missing["error"]["field"] == "key"
    async with api.db.transaction(read_only=True) as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "ingest_key")
                                         .order_by(AuditEntry.id))).all()
        assert list(actions) == ["ingest_key.create", "ingest_key.devices"]
        stored = await session.scalar(select(IngestKey))
        assert stored is not None and stored.name == "楼宇网关 3 号"


async def test_the_endpoint_dispatches_to_whichever_domain_declared_the_kind(db: Database, tmp_path: Path) -> None:
    """A domain that declares ``on_device_message("position", ...)`` gets the position messages: the ingest knows
    no domain."""
    taken: list[tuple[int, bytes, str]] = []

    async def positions(device_id: int, raw: bytes, channel: str) -> DeviceAnswer:
        taken.append((device_id, raw, channel))
        return DeviceAnswer(json.loads(raw)["message_id"], "stored")

    settings = api_settings(tmp_path)
    assembly = assembled(db, settings, replacements={
        RECORDINGS: RecordingStores(LocalRecordingStore(tmp_path / "recordings")),
        DEVICE_INTAKES: DeviceIntakes([on_device_message("position", positions)])})
    home = await household(db)
    async with TestClient(TestServer(assembly.web)) as client:
        api = Api(client, db, settings, assembly.web[TOKENS])
        key = await _key(api, home.device_id)
        fix = {"message_id": "p-1", "measured_at": "2026-03-01T15:20:00+08:00", "lat": 31.23, "lon": 121.47,
               "accuracy_m": 12, "source": "gps"}
        status, answer = await _post(client, key, _body((home.device_id, "position", fix)))
        assert status == 200, answer
        assert answer["answers"][0] | {"received_at": None} == {"message_id": "p-1", "kind": "position",
                                                                 "status": "stored", "received_at": None}
        assert taken == [(home.device_id, json.dumps(fix, ensure_ascii=False).encode(), "http")]
        status, answer = await _post(client, key, _body((home.device_id, "alarm", message())))
        assert status == 422 and answer["error"]["code"] == "unknown_kind"  # this platform takes no alarms


def test_a_kind_has_one_intake_and_heartbeats_none() -> None:
    async def handler(device_id: int, raw: bytes, channel: str) -> DeviceAnswer:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="already"):
        DeviceIntakes([on_device_message("reading", handler), on_device_message("reading", handler)])
    for kind in ("heartbeat", "ack", "smell"):
        with pytest.raises(ValueError):
            on_device_message(kind, handler)
    assert DeviceIntakes([on_device_message("reading", handler), on_device_message("alarm", handler)]).kinds == (
        "alarm", "reading")


def test_the_window_and_the_body_bound_are_configurable_within_bounds() -> None:
    settings = Settings.from_env({})
    assert (settings.ingest_max_skew, settings.ingest_max_body_bytes) == (300, 262_144)
    assert Settings.from_env({"CC_INGEST_MAX_SKEW": "60"}).ingest_max_skew == 60
    for name, value in (("CC_INGEST_MAX_SKEW", "5"), ("CC_INGEST_MAX_BODY_BYTES", "100")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})


async def test_the_endpoint_is_in_the_openapi_document_with_its_headers(api: Api) -> None:
    status, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    assert status == 200
    operation = document["paths"][URL]["post"]
    assert operation["security"] == []
    assert [p["name"] for p in operation["parameters"] if p["in"] == "header"] == [
        "X-CC-Key-Id", "X-CC-Timestamp", "X-CC-Nonce", "X-CC-Signature"]
    assert {"200", "401", "413", "422"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert set(schemas["DeviceMessageAnswer"]["properties"]) == {"message_id", "kind", "status", "reason", "field",
                                                                 "received_at"}


async def test_a_signed_position_reaches_the_locations_intake_and_is_stored_once(api: Api) -> None:
    from callcenter.locations.models import Position

    home = await household(api.db)
    key = await _key(api, home.device_id)
    fix = {"message_id": "gw-pos-1", "measured_at": dt.datetime.now(dt.UTC).isoformat(), "lat": 39.9138,
           "lon": 116.3636, "accuracy_m": 12, "source": "wifi"}
    bad = {**fix, "message_id": "gw-pos-2", "lat": 91}
    for _ in range(2):  # the gateway's resend of the same batch: one position
        status, answer = await _post(api.client, key, _body((home.device_id, "position", fix),
                                                            (home.device_id, "position", bad)))
        assert status == 200, answer
        stored, refused = answer["answers"]
        assert (stored["kind"], stored["status"], stored["message_id"]) == ("position", "stored", "gw-pos-1")
        assert (refused["status"], refused["reason"], refused["field"]) == ("rejected", "invalid", "lat")
    assert await _count(api.db, Position, Position.device_id == home.device_id) == 1


async def test_a_signed_reading_reaches_the_readings_intake_and_raises_its_vital_sign_alarm(api: Api) -> None:
    from callcenter.readings.models import Reading, ReadingSource

    home = await household(api.db)
    key = await _key(api, home.device_id)
    crisis = {"message_id": "gw-bp-1", "type": "blood_pressure", "measured_at": dt.datetime.now(dt.UTC).isoformat(),
              "values": {"systolic_mmhg": 186, "diastolic_mmhg": 114}}
    bad = {**crisis, "message_id": "gw-bp-2", "values": {"systolic_mmhg": "186", "diastolic_mmhg": 114}}
    status, answer = await _post(api.client, key, _body((home.device_id, "reading", crisis),
                                                        (home.device_id, "reading", bad)))
    assert status == 200, answer
    stored, refused = answer["answers"]
    assert (stored["kind"], stored["status"], stored["message_id"]) == ("reading", "stored", "gw-bp-1")
    assert (refused["status"], refused["reason"], refused["field"]) == ("rejected", "invalid", "values.systolic_mmhg")
    async with api.db.transaction(read_only=True) as session:
        [reading] = (await session.scalars(select(Reading).where(Reading.device_id == home.device_id))).all()
        assert reading.source is ReadingSource.HTTP and reading.alarm_id is not None
        alarm = await session.get(Alarm, reading.alarm_id)
        assert alarm is not None and alarm.type.value == "vital_sign" and alarm.source is AlarmSource.HTTP
