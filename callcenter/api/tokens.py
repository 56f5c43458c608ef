"""Stateless bearer tokens, and the one way this platform signs anything: itsdangerous, HMAC-SHA256.

A bearer token is itsdangerous's URL-safe signed JSON of the user id, role, session id and expiry. The session is a
row (users.sessions): every request re-reads it with the user, so a log-out, a revocation, a disabled account or a
changed role takes effect on the token's next request.
The key is generated once per data dir into ``secrets/api-token.key`` (mode 600); replacing that file logs
everybody out. The panel's cookies and the recordings' playback links are signed with keys derived from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
from pathlib import Path

from itsdangerous import BadPayload, BadSignature, Signer, URLSafeSerializer

from callcenter.config import Settings
from callcenter.secret_files import generated_secret
from callcenter.users.models import Role

TOKEN_VERSION = 3  # 1: the hand-made ``payload.signature`` format; 2: itsdangerous without a session id
_HMAC_SHA256 = {"digest_method": hashlib.sha256, "key_derivation": "hmac"}


class InvalidToken(ValueError):
    """The token is malformed, forged, or expired; the message says which (never echoed with the token)."""


@dataclasses.dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    role: Role
    session_id: str
    expires_at: dt.datetime


def token_key_path(settings: Settings) -> Path:
    return settings.data_dir / "secrets" / "api-token.key"


def load_token_key(path: Path) -> bytes:
    """The signing key at ``path``, created on first use (32 random bytes, hex, readable by its owner only)."""
    key = bytes.fromhex(generated_secret(path, lambda: secrets.token_hex(32)))
    if len(key) < 32:
        raise ValueError(f"{path}: the API token key is shorter than 32 bytes; delete it to generate a new one")
    return key


def signer(key: bytes, purpose: str) -> Signer:
    """Signs values for one ``purpose`` (itsdangerous's salt): a value signed for one never verifies for another."""
    return Signer(key, salt=purpose, **_HMAC_SHA256)


def serializer(key: bytes, purpose: str) -> URLSafeSerializer:
    """Signs JSON-able values for one ``purpose`` into URL-safe strings."""
    return URLSafeSerializer(key, salt=purpose, signer_kwargs=_HMAC_SHA256)


class TokenService:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self._serializer = serializer(key, "api-token")

    @classmethod
    def for_settings(cls, settings: Settings) -> TokenService:
        return cls(load_token_key(token_key_path(settings)), settings.api_token_ttl)

    def derived_key(self, purpose: str) -> bytes:
        """A key for another signer (the panel's session cookies), derived from this one so there is still one
        secret file to guard and to rotate — and a value signed for one purpose never verifies for another."""
        return signer(self._key, f"callcenter-derived-key:{purpose}").derive_key()

    def issue(self, user_id: int, role: Role, session_id: str, now: dt.datetime) -> tuple[str, dt.datetime]:
        """A token for the session ``session_id`` (users.sessions.open_session writes its row: a token whose
        session has no row is refused)."""
        expires_at = (now + self.ttl).replace(microsecond=0)
        claims = {"v": TOKEN_VERSION, "sub": user_id, "role": role.value, "sid": session_id,
                  "exp": int(expires_at.timestamp())}
        return self._serializer.dumps(claims), expires_at

    def verify(self, token: str, now: dt.datetime) -> TokenClaims:
        try:
            claims = self._serializer.loads(token)
        except BadPayload:
            # Signed by us but unreadable: only a key shared with another format could do this.
            raise InvalidToken("unreadable token") from None
        except BadSignature:
            raise InvalidToken("bad token signature") from None
        if not isinstance(claims, dict) or claims.get("v") != TOKEN_VERSION:
            raise InvalidToken("unsupported token version: log in again")
        try:
            user_id, role, session_id = int(claims["sub"]), Role(claims["role"]), claims["sid"]
            expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        except (ValueError, KeyError, TypeError, OverflowError, OSError) as error:
            raise InvalidToken(f"unreadable token: {type(error).__name__}") from None
        if not isinstance(session_id, str) or not session_id:
            raise InvalidToken("unreadable token: no session")
        if expires_at <= now:
            raise InvalidToken("token expired")
        return TokenClaims(user_id, role, session_id, expires_at)
