"""The signed provider reporting API (seed 7.5.3): a provider's own system reports its steps on an order.

Requests are authenticated by signature, not by a bearer token (docs/provider-api.md): the shared scheme of
``callcenter.api.signing`` (HMAC-SHA256 over "POST\\n/api/v1/provider-reports\\n{timestamp}\\n{nonce}\\n{sha256 hex
of the raw body}", a timestamp window and a nonce table), with the keys (``ProviderApiKey``: a deactivated
provider's keys stop working) and nonces (``ProviderApiNonce``) of this domain.

Reports are idempotent by the provider's ``report_id``: the first outcome (status and body, errors included) is
stored in ``ProviderReport`` and a retried delivery gets it again and changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api import signing
from callcenter.api.errors import ApiError, Conflict, NotFound
from callcenter.api.signing import (
    DEFAULT_MAX_SKEW,
    KEY_ID_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Rejection,
    SignatureRejected,
)
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder
from callcenter.orders.schemas import Action, ActionPayload
from callcenter.orders.workflow import WorkflowActor, perform
from callcenter.providers.models import ProviderApiKey, ProviderApiNonce, ProviderReport, ServiceProvider
from callcenter.providers.schemas import ProviderReportIn, ProviderReportOut

__all__ = [
    "DEFAULT_MAX_SKEW",
    "KEY_ID_HEADER",
    "NONCE_HEADER",
    "PROVIDER_INACTIVE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Rejection",
    "SignatureRejected",
    "StoredAnswer",
    "authenticate",
    "claim_nonce",
    "compute_signature",
    "receive_report",
    "record_rejection",
    "sign_request",
    "string_to_sign",
    "verify",
]

log = get_logger(__name__)

METHOD = "POST"
REPORTS_PATH = "/api/v1/provider-reports"
# The key's provider was deactivated: its keys stop working with it (a 401 code of this interface only).
PROVIDER_INACTIVE = "provider_inactive"


class StoredAnswer(ApiError):
    """The stored error outcome of a report, answered again as it was the first time."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(str(error.get("message", "")), field=error.get("field"), code=error.get("code"))
        self.status = status  # type: ignore[misc]
        self._body = body

    def body(self) -> dict[str, object]:
        return dict(self._body)


# --- signing (both sides): the shared scheme (api.signing) on this interface's method and path -------------------


def string_to_sign(timestamp: str, nonce: str, body: bytes) -> bytes:
    return signing.string_to_sign(METHOD, REPORTS_PATH, timestamp, nonce, body)


def compute_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Hex HMAC-SHA256 keyed with the secret's UTF-8 bytes (the string as issued, not base64-decoded)."""
    return signing.compute_signature(secret, METHOD, REPORTS_PATH, timestamp, nonce, body)


def sign_request(key_id: str, secret: str, body: bytes, now: dt.datetime | float,
                 nonce: str | None = None) -> dict[str, str]:
    """The four headers a provider's system sends with ``body`` (the exact bytes it posts), signed at ``now``
    (a datetime or unix seconds). A fresh random nonce is drawn when none is given."""
    return signing.sign_request(METHOD, REPORTS_PATH, key_id, secret, body, now, nonce)


# --- verification -----------------------------------------------------------------------------------------------


async def authenticate(session: AsyncSession, headers: Mapping[str, str], body: bytes, *, now: dt.datetime,
                       max_skew: int = DEFAULT_MAX_SKEW) -> tuple[ProviderApiKey, str]:
    """The key that signed this request and its nonce, or ``SignatureRejected``; reads only (a read-only
    transaction will do). Checks, in order: the headers' shapes, the key (known, not revoked, its provider
    active), the signature over the raw ``body``, the timestamp (within ±``max_skew`` s of ``now``). The nonce is
    claimed next (:func:`claim_nonce`)."""
    signed = signing.read_headers(headers)
    key = await session.scalar(select(ProviderApiKey).where(ProviderApiKey.key_id == signed.key_id))
    signing.check_key(signed.key_id, found=key is not None, revoked=key is not None and key.revoked_at is not None)
    assert key is not None
    if not await session.scalar(select(ServiceProvider.active).where(ServiceProvider.id == key.provider_id)):
        raise SignatureRejected(PROVIDER_INACTIVE, f"API key {key.key_id!r} belongs to a provider that is not "
                                "active", key_id=key.key_id, field=KEY_ID_HEADER)
    signing.check_signature(signed, key.secret, METHOD, REPORTS_PATH, body, now=now, max_skew=max_skew)
    return key, signed.nonce


async def claim_nonce(session: AsyncSession, key_id: str, nonce: str, *, now: dt.datetime,
                      max_skew: int = DEFAULT_MAX_SKEW) -> None:
    """Store the nonce of an authenticated request (a second use is a replay) and purge those older than twice
    the window. Commit it on its own: a request that fails later (a bad body, a reused report id) has still used
    its nonce."""
    await signing.claim_nonce(session, ProviderApiNonce, key_id, nonce, now=now, max_skew=max_skew)


async def verify(session: AsyncSession, headers: Mapping[str, str], body: bytes, *, now: dt.datetime,
                 max_skew: int = DEFAULT_MAX_SKEW) -> ProviderApiKey:
    """:func:`authenticate` then :func:`claim_nonce` in one session."""
    key, nonce = await authenticate(session, headers, body, now=now, max_skew=max_skew)
    await claim_nonce(session, key.key_id, nonce, now=now, max_skew=max_skew)
    return key


async def record_rejection(db: Database, rejection: SignatureRejected, *, source_ip: str | None) -> None:
    """Log a refused request and audit it (in its own transaction: the request's own work was rolled back)."""
    await signing.record_rejection(db, rejection, source_ip=source_ip, interface="provider_api",
                                   target_type="provider_api_key")


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
