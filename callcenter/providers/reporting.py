"""The signed provider reporting API (seed 7.5.3): a provider's own system reports its steps on an order.

Requests are authenticated by signature, not by a bearer token (docs/provider-api.md):

    X-CC-Key-Id:    the key's id (``ProviderApiKey.key_id``)
    X-CC-Timestamp: unix seconds when the request was signed
    X-CC-Nonce:     16..64 characters, never used twice with the same key
    X-CC-Signature: hex HMAC-SHA256(secret, "POST\\n/api/v1/provider-reports\\n{timestamp}\\n{nonce}\\n{sha256 hex of
                    the raw body}")

The signature covers the body's exact bytes, so verification runs on the raw request before any JSON parsing.
A timestamp more than ``max_skew`` seconds from the server's clock is stale; a nonce seen before with the same key
is a replay. Nonces are kept only as long as a replay could pass the timestamp check (twice the window).

Reports are idempotent by the provider's ``report_id``: the first outcome (status and body, errors included) is
stored in ``ProviderReport`` and a retried delivery gets it again and changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import ApiError, Conflict, NotFound, Unauthorized
from callcenter.audit.services import Actor, record
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder
from callcenter.orders.schemas import Action, ActionPayload
from callcenter.orders.workflow import WorkflowActor, perform
from callcenter.providers.models import ProviderApiKey, ProviderApiNonce, ProviderReport, ServiceProvider
from callcenter.providers.schemas import ProviderReportIn, ProviderReportOut

log = get_logger(__name__)

METHOD = "POST"
REPORTS_PATH = "/api/v1/provider-reports"
KEY_ID_HEADER = "X-CC-Key-Id"
TIMESTAMP_HEADER = "X-CC-Timestamp"
NONCE_HEADER = "X-CC-Nonce"
SIGNATURE_HEADER = "X-CC-Signature"
DEFAULT_MAX_SKEW = 300
_NONCE = re.compile(r"[A-Za-z0-9._~+/=-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


class Rejection(enum.StrEnum):
    INVALID_SIGNATURE = "invalid_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    REPLAYED_NONCE = "replayed_nonce"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    PROVIDER_INACTIVE = "provider_inactive"  # the key's provider was deactivated: its keys stop working with it


class SignatureRejected(Unauthorized):
    """A request refused before anything was read from its body (401 with the reason as the code)."""

    def __init__(self, reason: Rejection, message: str, *, key_id: str | None, field: str | None = None) -> None:
        super().__init__(message, code=reason.value, field=field)
        self.reason = reason
        self.key_id = key_id


class StoredAnswer(ApiError):
    """The stored error outcome of a report, answered again as it was the first time."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(str(error.get("message", "")), field=error.get("field"), code=error.get("code"))
        self.status = status  # type: ignore[misc]
        self._body = body

    def body(self) -> dict[str, object]:
        return dict(self._body)


# --- signing (both sides) ---------------------------------------------------------------------------------------


def string_to_sign(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{METHOD}\n{REPORTS_PATH}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()


def compute_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Hex HMAC-SHA256 keyed with the secret's UTF-8 bytes (the string as issued, not base64-decoded)."""
    return hmac.new(secret.encode(), string_to_sign(timestamp, nonce, body), hashlib.sha256).hexdigest()


def sign_request(key_id: str, secret: str, body: bytes, now: dt.datetime | float,
                 nonce: str | None = None) -> dict[str, str]:
    """The four headers a provider's system sends with ``body`` (the exact bytes it posts), signed at ``now``
    (a datetime or unix seconds). A fresh random nonce is drawn when none is given."""
    timestamp = str(int(now.timestamp() if isinstance(now, dt.datetime) else now))
    nonce = nonce if nonce is not None else secrets.token_urlsafe(18)
    return {KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: compute_signature(secret, timestamp, nonce, body)}


# --- verification -----------------------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str, pattern: re.Pattern[str], shape: str,
            key_id: str | None) -> str:
    value = headers.get(name)
    if value is None:
        raise SignatureRejected(Rejection.INVALID_SIGNATURE, f"the {name} header is missing", key_id=key_id,
                                field=name)
    if not pattern.fullmatch(value):
        raise SignatureRejected(Rejection.INVALID_SIGNATURE, f"the {name} header must be {shape}", key_id=key_id,
                                field=name)
    return value


async def authenticate(session: AsyncSession, headers: Mapping[str, str], body: bytes, *, now: dt.datetime,
                       max_skew: int = DEFAULT_MAX_SKEW) -> tuple[ProviderApiKey, str]:
    """The key that signed this request and its nonce, or ``SignatureRejected``; reads only (a read-only
    transaction will do). Checks, in order: the headers' shapes, the key (known, not revoked), the signature over
    the raw ``body``, the timestamp (within ±``max_skew`` s of ``now``). The nonce is claimed next
    (:func:`claim_nonce`)."""
    key_id = headers.get(KEY_ID_HEADER)
    key_id = _header(headers, KEY_ID_HEADER, re.compile(r"[A-Za-z0-9_-]{1,40}"), "a key id",
                     key_id[:40] if key_id else None)
    timestamp = _header(headers, TIMESTAMP_HEADER, _TIMESTAMP, "unix seconds (digits)", key_id)
    nonce = _header(headers, NONCE_HEADER, _NONCE, "16 to 64 characters of A-Z a-z 0-9 . _ ~ + / = -", key_id)
    signature = _header(headers, SIGNATURE_HEADER, _SIGNATURE, "64 hex digits (HMAC-SHA256)", key_id)
    key = await session.scalar(select(ProviderApiKey).where(ProviderApiKey.key_id == key_id))
    if key is None:
        raise SignatureRejected(Rejection.UNKNOWN_KEY, f"no API key {key_id!r}", key_id=key_id, field=KEY_ID_HEADER)
    if key.revoked_at is not None:
        raise SignatureRejected(Rejection.REVOKED_KEY, f"API key {key_id!r} was revoked", key_id=key_id,
                                field=KEY_ID_HEADER)
    if not await session.scalar(select(ServiceProvider.active).where(ServiceProvider.id == key.provider_id)):
        raise SignatureRejected(Rejection.PROVIDER_INACTIVE, f"API key {key_id!r} belongs to a provider that is not "
                                "active", key_id=key_id, field=KEY_ID_HEADER)
    expected = compute_signature(key.secret, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise SignatureRejected(Rejection.INVALID_SIGNATURE, "the signature does not match the request "
                                "(see docs/provider-api.md for the string to sign)", key_id=key_id,
                                field=SIGNATURE_HEADER)
    skew = int(timestamp) - int(now.timestamp())
    if abs(skew) > max_skew:
        raise SignatureRejected(Rejection.STALE_TIMESTAMP, f"the timestamp is {abs(skew)} s "
                                f"{'ahead of' if skew > 0 else 'behind'} the server's clock (at most {max_skew} s): "
                                "sign each delivery anew, and keep the clock synchronised", key_id=key_id,
                                field=TIMESTAMP_HEADER)
    return key, nonce


async def claim_nonce(session: AsyncSession, key_id: str, nonce: str, *, now: dt.datetime,
                      max_skew: int = DEFAULT_MAX_SKEW) -> None:
    """Store the nonce of an authenticated request (a second use is a replay) and purge those older than twice
    the window. Commit it on its own: a request that fails later (a bad body, a reused report id) has still used
    its nonce."""
    await session.execute(delete(ProviderApiNonce).where(
        ProviderApiNonce.seen_at < now - dt.timedelta(seconds=2 * max_skew)))
    try:
        async with session.begin_nested():
            session.add(ProviderApiNonce(key_id=key_id, nonce=nonce, seen_at=now))
    except IntegrityError:
        raise SignatureRejected(Rejection.REPLAYED_NONCE, "this nonce was used already: draw a new one for every "
                                "request", key_id=key_id, field=NONCE_HEADER) from None


async def verify(session: AsyncSession, headers: Mapping[str, str], body: bytes, *, now: dt.datetime,
                 max_skew: int = DEFAULT_MAX_SKEW) -> ProviderApiKey:
    """:func:`authenticate` then :func:`claim_nonce` in one session."""
    key, nonce = await authenticate(session, headers, body, now=now, max_skew=max_skew)
    await claim_nonce(session, key.key_id, nonce, now=now, max_skew=max_skew)
    return key


async def record_rejection(db: Database, rejection: SignatureRejected, *, source_ip: str | None) -> None:
    """Log a refused request and audit it (in its own transaction: the request's own work was rolled back)."""
    log.warning("provider_api.rejected", reason=rejection.reason.value, key_id=rejection.key_id,
                source_ip=source_ip, message=rejection.message)
    async with db.transaction() as session:
        record(session, Actor(None, "provider-api", source_ip), action="provider_api.rejected",
               target_type="provider_api_key", target_id=rejection.key_id,
               details={"reason": rejection.reason.value, "key_id": rejection.key_id, "message": rejection.message})


# --- reports ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ReportOutcome:
    status: int
    body: dict[str, Any]
    replayed: bool


def _replay(stored: ProviderReport, payload: dict[str, Any]) -> ReportOutcome:
    if stored.payload != payload:
        raise Conflict(f"report {stored.report_id!r} was received on {stored.received_at.isoformat()} with a "
                       "different body: a new report needs a new report_id", field="report_id",
                       code="report_id_reused")
    return ReportOutcome(stored.status_code, dict(stored.response), replayed=True)


async def _stored_report(session: AsyncSession, provider_id: int, report_id: str) -> ProviderReport | None:
    return await session.scalar(select(ProviderReport).where(ProviderReport.provider_id == provider_id,
                                                             ProviderReport.report_id == report_id))


async def _order_of(session: AsyncSession, provider: ServiceProvider, report: ProviderReportIn) -> int:
    # Columns only, not the row: perform() loads and locks the order itself, with the version check.
    statement = select(WorkOrder.id, WorkOrder.provider_id)
    if report.work_order_id is not None:
        found = (await session.execute(statement.where(WorkOrder.id == report.work_order_id))).first()
        reference, field = str(report.work_order_id), "work_order_id"
    else:
        found = (await session.execute(statement.where(WorkOrder.number == report.work_order_number))).first()
        reference, field = str(report.work_order_number), "work_order_number"
    # Another provider's order is answered exactly like a missing one: a key reveals nothing beyond its own.
    if found is None or found.provider_id != provider.id:
        raise NotFound(f"no work order {reference} for {provider.name}", field=field)
    return int(found.id)


def _payload(report: ProviderReportIn) -> ActionPayload:
    return ActionPayload.model_validate(report.model_dump(include={"reason", "staff_id", "at", "latitude",
                                                                   "longitude", "receipt"}, exclude_none=True))


async def receive_report(session: AsyncSession, provider: ServiceProvider, report: ProviderReportIn, *,
                         now: dt.datetime, tz: ZoneInfo) -> ReportOutcome:
    """Apply a verified report once. The outcome (success or refusal: 404, 409, 422) is stored with the report;
    the same ``report_id`` again gets it back without acting; with a different body it is a 409."""
    payload = report.model_dump(mode="json", exclude_none=True)
    stored = await _stored_report(session, provider.id, report.report_id)
    if stored is not None:
        return _replay(stored, payload)
    row = ProviderReport(provider_id=provider.id, report_id=report.report_id, action=report.action,
                         received_at=now, payload=payload, status_code=0, response={})
    try:
        async with session.begin_nested():  # claims the report_id; a concurrent delivery waits here, then replays
            session.add(row)
    except IntegrityError:
        stored = await _stored_report(session, provider.id, report.report_id)
        if stored is None:
            raise
        return _replay(stored, payload)
    actor = WorkflowActor(user_id=None, label=f"provider-api:{provider.name}"[:100], role=None,
                          provider_id=provider.id)
    order_id: int | None = None
    try:
        async with session.begin_nested():  # a refused step leaves nothing behind but the stored refusal
            order_id = await _order_of(session, provider, report)
            order = await perform(session, order_id, Action(report.action), actor=actor, version=None,
                                  payload=_payload(report), tz=tz, now=now)
            status, body = 200, ProviderReportOut(
                report_id=report.report_id, work_order_id=order.id, work_order_number=order.number,
                action=report.action, status=order.status.value, received_at=now).model_dump(mode="json")
    except ApiError as error:
        status, body = error.status, error.body()
        if isinstance(error, NotFound):
            order_id = None
    # Set after the savepoint: a rolled-back savepoint expires what it touched.
    row.work_order_id, row.status_code, row.response = order_id, status, body
    await session.flush()
    log.info("provider_api.report", provider_id=provider.id, report_id=report.report_id, action=report.action,
             work_order_id=order_id, status=status)
    return ReportOutcome(status, body, replayed=False)
