"""Signed machine-to-machine requests: the HMAC-SHA256 scheme of the provider reporting API
(docs/provider-api.md), shared by every signed interface (``providers.reporting``, ``ingest``).

A request carries four headers:

    X-CC-Key-Id:    the key's id
    X-CC-Timestamp: unix seconds when the request was signed
    X-CC-Nonce:     16..64 characters, never used twice with the same key
    X-CC-Signature: hex HMAC-SHA256(secret, "{METHOD}\\n{path}\\n{timestamp}\\n{nonce}\\n{sha256 hex of the raw
                    body}")

The signature covers the body's exact bytes, so verification runs on the raw request before any JSON parsing.
A timestamp more than ``max_skew`` seconds from the server's clock is stale; a nonce seen before with the same key
is a replay. Nonces are kept only as long as a replay could pass the timestamp check (twice the window).

What differs between interfaces is where their keys and nonces live (each domain owns its tables) and what a key
may do; the scheme, its refusals and their logging are here, once.
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
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Unauthorized
from callcenter.audit.services import Actor, record
from callcenter.db.session import Database
from callcenter.logs import get_logger

log = get_logger(__name__)

KEY_ID_HEADER = "X-CC-Key-Id"
TIMESTAMP_HEADER = "X-CC-Timestamp"
NONCE_HEADER = "X-CC-Nonce"
SIGNATURE_HEADER = "X-CC-Signature"
DEFAULT_MAX_SKEW = 300
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_NONCE = re.compile(r"[A-Za-z0-9._~+/=-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


class Rejection(enum.StrEnum):
    """Why a signed request was refused: the 401's error code."""

    INVALID_SIGNATURE = "invalid_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    REPLAYED_NONCE = "replayed_nonce"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"


class SignatureRejected(Unauthorized):
    """A request refused before anything was read from its body (401 with the reason as the code). ``reason`` is a
    ``Rejection`` or an interface's own code (a provider's deactivation: ``provider_inactive``)."""

    def __init__(self, reason: str, message: str, *, key_id: str | None, field: str | None = None) -> None:
        super().__init__(message, code=str(reason), field=field)
        self.reason = reason
        self.key_id = key_id


# --- signing (both sides) ---------------------------------------------------------------------------------------


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()


def compute_signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Hex HMAC-SHA256 keyed with the secret's UTF-8 bytes (the string as issued, not base64-decoded)."""
    return hmac.new(secret.encode(), string_to_sign(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def sign_request(method: str, path: str, key_id: str, secret: str, body: bytes, now: dt.datetime | float,
                 nonce: str | None = None) -> dict[str, str]:
    """The four headers a client sends with ``body`` (the exact bytes it posts) to ``method path``, signed at
    ``now`` (a datetime or unix seconds). A fresh random nonce is drawn when none is given."""
    timestamp = str(int(now.timestamp() if isinstance(now, dt.datetime) else now))
    nonce = nonce if nonce is not None else secrets.token_urlsafe(18)
    return {KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: compute_signature(secret, method, path, timestamp, nonce, body)}


# --- verification -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The four headers, each of its shape."""

    key_id: str
    timestamp: str
    nonce: str
    signature: str


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


def read_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """The signature headers, or ``SignatureRejected`` (invalid_signature) naming the missing or malformed one."""
    given = headers.get(KEY_ID_HEADER)
    key_id = _header(headers, KEY_ID_HEADER, _KEY_ID, "a key id", given[:40] if given else None)
    return SignedHeaders(
        key_id=key_id,
        timestamp=_header(headers, TIMESTAMP_HEADER, _TIMESTAMP, "unix seconds (digits)", key_id),
        nonce=_header(headers, NONCE_HEADER, _NONCE, "16 to 64 characters of A-Z a-z 0-9 . _ ~ + / = -", key_id),
        signature=_header(headers, SIGNATURE_HEADER, _SIGNATURE, "64 hex digits (HMAC-SHA256)", key_id))


def check_key(key_id: str, *, found: bool, revoked: bool) -> None:
    """``unknown_key`` or ``revoked_key`` for the key the headers name, as its interface found it."""
    if not found:
        raise SignatureRejected(Rejection.UNKNOWN_KEY, f"no API key {key_id!r}", key_id=key_id, field=KEY_ID_HEADER)
    if revoked:
        raise SignatureRejected(Rejection.REVOKED_KEY, f"API key {key_id!r} was revoked", key_id=key_id,
                                field=KEY_ID_HEADER)


def check_signature(signed: SignedHeaders, secret: str, method: str, path: str, body: bytes, *, now: dt.datetime,
                    max_skew: int = DEFAULT_MAX_SKEW, guide: str = "docs/provider-api.md") -> None:
    """The signature over the raw ``body`` (``invalid_signature``), then the timestamp within ±``max_skew`` s of
    ``now`` (``stale_timestamp``). ``guide`` is where the refusal tells the client to read the scheme."""
    expected = compute_signature(secret, method, path, signed.timestamp, signed.nonce, body)
    if not hmac.compare_digest(expected, signed.signature.lower()):
        raise SignatureRejected(Rejection.INVALID_SIGNATURE, "the signature does not match the request "
                                f"(see {guide} for the string to sign)", key_id=signed.key_id,
                                field=SIGNATURE_HEADER)
    skew = int(signed.timestamp) - int(now.timestamp())
    if abs(skew) > max_skew:
        raise SignatureRejected(Rejection.STALE_TIMESTAMP, f"the timestamp is {abs(skew)} s "
                                f"{'ahead of' if skew > 0 else 'behind'} the server's clock (at most {max_skew} s): "
                                "sign each delivery anew, and keep the clock synchronised", key_id=signed.key_id,
                                field=TIMESTAMP_HEADER)


class NonceRow(Protocol):
    """A domain's nonce table: ``key_id``, ``nonce`` (unique together) and ``seen_at`` (indexed)."""

    def __init__(self, *, key_id: str, nonce: str, seen_at: dt.datetime) -> None: ...


async def claim_nonce(session: AsyncSession, model: type[NonceRow], key_id: str, nonce: str, *, now: dt.datetime,
                      max_skew: int = DEFAULT_MAX_SKEW) -> None:
    """Store the nonce of an authenticated request in ``model``'s table (a second use is a replay) and purge those
    older than twice the window. Commit it on its own: a request that fails later (a bad body, a reused report id)
    has still used its nonce."""
    table: Any = model
    await session.execute(delete(table).where(table.seen_at < now - dt.timedelta(seconds=2 * max_skew)))
    try:
        async with session.begin_nested():
            session.add(model(key_id=key_id, nonce=nonce, seen_at=now))
    except IntegrityError:
        raise SignatureRejected(Rejection.REPLAYED_NONCE, "this nonce was used already: draw a new one for every "
                                "request", key_id=key_id, field=NONCE_HEADER) from None


async def record_rejection(db: Database, rejection: SignatureRejected, *, source_ip: str | None, interface: str,
                           target_type: str) -> None:
    """Log a refused request (``<interface>.rejected``, a warning) and audit it in its own transaction (the
    request's own work was rolled back): the actor is ``interface`` from ``source_ip``, the target the key."""
    reason = str(rejection.reason)
    log.warning(f"{interface}.rejected", reason=reason, key_id=rejection.key_id, source_ip=source_ip,
                message=rejection.message)
    async with db.transaction() as session:
        record(session, Actor(None, interface.replace("_", "-"), source_ip), action=f"{interface}.rejected",
               target_type=target_type, target_id=rejection.key_id,
               details={"reason": reason, "key_id": rejection.key_id, "message": rejection.message})
