"""/api/v1/ingest-keys: the keys gateways and vendor clouds sign with (admins); and /api/v1/device-messages, the
signed endpoint they post device messages to (docs/device-protocol.md, "HTTP ingest")."""

from __future__ import annotations

from aiohttp import web

from callcenter.api import signing
from callcenter.api.context import DATABASE
from callcenter.api.errors import ApiError, Invalid, MalformedRequest
from callcenter.api.registry import ApiRequest, ApiRoutes, parse_json_body
from callcenter.contract import DEVICE_INTAKES
from callcenter.db.base import utcnow
from callcenter.ingest import services
from callcenter.ingest.schemas import (
    MAX_BATCH,
    DeviceMessageAnswer,
    DeviceMessagesIn,
    DeviceMessagesOut,
    IngestKeyCreate,
    IngestKeyCreated,
    IngestKeyDevices,
    IngestKeyList,
    IngestKeyOut,
)
from callcenter.ingest.services import DEVICE_INGEST

routes = ApiRoutes("ingest")
ADMINS_ONLY = ()  # keys speak for devices: admins issue, scope and revoke them


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


def _out(key: object) -> IngestKeyOut:
    return IngestKeyOut.model_validate(key)


@routes.route("POST", "/ingest-keys", summary="Issue a signing key for a gateway or vendor cloud",
              body=IngestKeyCreate, response=IngestKeyCreated, status=201, roles=ADMINS_ONLY,
              description="The key may submit messages only for the devices listed. The secret is in this answer "
                          "only: hand it to the gateway's operator over a safe channel.")
async def create_key(request: ApiRequest) -> IngestKeyCreated:
    body: IngestKeyCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        key = await services.create_key(session, body.name, body.device_ids, request.actor)
        return IngestKeyCreated.model_validate(key)


@routes.route("GET", "/ingest-keys", summary="List the ingest keys (never their secrets)", response=IngestKeyList,
              roles=ADMINS_ONLY)
async def list_keys(request: ApiRequest) -> IngestKeyList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return IngestKeyList(items=[_out(key) for key in await services.list_keys(session)])


@routes.route("GET", "/ingest-keys/{key}", summary="Read an ingest key and its devices", response=IngestKeyOut,
              roles=ADMINS_ONLY)
async def show_key(request: ApiRequest) -> IngestKeyOut:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return _out(await services.get_key(session, request.params["key"]))


@routes.route("PUT", "/ingest-keys/{key}/devices", summary="Replace the devices an ingest key may submit for",
              body=IngestKeyDevices, response=IngestKeyOut, roles=ADMINS_ONLY,
              description="From the next request on, a message for a device no longer listed is answered "
                          "rejected/unknown_device.")
async def set_devices(request: ApiRequest) -> IngestKeyOut:
    body: IngestKeyDevices = request.body
    async with request.require(DATABASE).transaction() as session:
        return _out(await services.set_devices(session, request.params["key"], body.device_ids, request.actor))


@routes.route("DELETE", "/ingest-keys/{key}", summary="Revoke an ingest key", response=IngestKeyOut,
              roles=ADMINS_ONLY, description="Requests signed with it are refused from now on (revoked_key).")
async def revoke_key(request: ApiRequest) -> IngestKeyOut:
    async with request.require(DATABASE).transaction() as session:
        return _out(await services.revoke_key(session, request.params["key"], request.actor))


_SIGNATURE_HEADERS = (
    (signing.KEY_ID_HEADER, "the ingest key's id"),
    (signing.TIMESTAMP_HEADER, "unix seconds when the request was signed (within CC_INGEST_MAX_SKEW)"),
    (signing.NONCE_HEADER, "16..64 characters, never reused with the same key"),
    (signing.SIGNATURE_HEADER, "hex HMAC-SHA256(secret, \"POST\\n/api/v1/device-messages\\n{timestamp}\\n"
                               "{nonce}\\n{sha256 hex of the raw body}\")"),
)


@routes.route("POST", "/device-messages", summary="A gateway or vendor cloud posts device messages (signed)",
              body=DeviceMessagesIn, response=DeviceMessagesOut, roles=None, raw_body=True,
              headers=_SIGNATURE_HEADERS, errors=(401, 413),
              description="Authenticated by an HMAC-SHA256 signature over the raw body with an ingest key, as the "
                          "provider API (docs/device-protocol.md, HTTP ingest). 401 codes: invalid_signature, "
                          "stale_timestamp, replayed_nonce, unknown_key, revoked_key; 413 over "
                          f"CC_INGEST_MAX_BODY_BYTES; 422 unknown_kind names messages.N.kind. 1 to {MAX_BATCH} "
                          "messages, each taken in its own transaction and answered with the acknowledgement a "
                          "device gets over MQTT (stored, or rejected with its reason and field); a device the key "
                          "does not list is answered rejected/unknown_device.")
async def device_messages(request: ApiRequest) -> DeviceMessagesOut:
    ingest = request.require(DEVICE_INGEST)
    db = request.require(DATABASE)
    source_ip = request.source_ip
    length = request.http.content_length
    if length is not None and length > ingest.max_body_bytes:
        refusal = BodyTooLarge(f"the body is {length} bytes; at most {ingest.max_body_bytes}")
        ingest.refuse(refusal.code, key_id=None, source_ip=source_ip, message=refusal.message)
        raise refusal
    try:
        raw = await request.http.read()
    except web.HTTPRequestEntityTooLarge:  # chunked, past the application's own bound
        raw = None
    if raw is None or len(raw) > ingest.max_body_bytes:
        refusal = BodyTooLarge(f"the body is longer than {ingest.max_body_bytes} bytes")
        ingest.refuse(refusal.code, key_id=None, source_ip=source_ip, message=refusal.message)
        raise refusal
    now = utcnow()
    try:
        # Checked without writing, so a stream of bad requests does not queue for the database's write turn.
        async with db.transaction(read_only=True) as session:
            key_row_id, key_id, nonce = await services.authenticate(session, request.http.headers, raw, now=now,
                                                                    max_skew=ingest.max_skew)
        async with db.transaction() as session:  # committed now: the nonce is spent whatever comes next
            await services.claim_nonce(session, key_id, nonce, now=now, max_skew=ingest.max_skew)
    except signing.SignatureRejected as rejection:
        ingest.refuse(str(rejection.reason), key_id=rejection.key_id, source_ip=source_ip, message=rejection.message)
        await signing.record_rejection(db, rejection, source_ip=source_ip, interface="device_ingest",
                                       target_type="ingest_key")
        raise
    intakes = request.require(DEVICE_INTAKES)
    try:
        batch: DeviceMessagesIn = parse_json_body(DeviceMessagesIn, raw)  # type: ignore[assignment]
        services.check_kinds(batch, intakes)
    except (Invalid, MalformedRequest) as refusal:  # nothing of the batch was handed on
        ingest.refuse(refusal.code, key_id=key_id, source_ip=source_ip, message=refusal.message)
        raise
    async with db.transaction(read_only=True) as session:
        allowed = await services.allowed_devices(session, key_row_id, (item.device_id for item in batch.messages))
    answers = await ingest.dispatch(batch, intakes, allowed, received_at=now)
    return DeviceMessagesOut(answers=[DeviceMessageAnswer.model_validate(answer) for answer in answers])
