"""Stateless bearer tokens, and the one way this platform signs anything: itsdangerous, HMAC-SHA256.

A bearer token is itsdangerous's URL-safe signed JSON of the user id, role and expiry. Nothing is stored per token;
every request re-reads the user, so disabling an account (or changing its role) takes effect on its next request.
The key is generated once per data dir into ``secrets/api-token.key`` (mode 600); replacing that file logs
everybody out. The panel's cookies and the recordings' playback links are signed with keys derived from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import secrets
from pathlib import Path

from itsdangerous import BadPayload, BadSignature, Signer, URLSafeSerializer

from callcenter.config import Settings
from callcenter.users.models import Role

TOKEN_VERSION = 2  # 1 was the hand-made ``payload.signature`` format, before itsdangerous
_HMAC_SHA256 = {"digest_method": hashlib.sha256, "key_derivation": "hmac"}


class InvalidToken(ValueError):
    """The token is malformed, forged, or expired; the message says which (never echoed with the token)."""


@dataclasses.dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    role: Role
    expires_at: dt.datetime


def token_key_path(settings: Settings) -> Path:
    return settings.data_dir / "secrets" / "api-token.key"


def load_token_key(path: Path) -> bytes:
    """The signing key at ``path``, created on first use (32 random bytes, hex, readable by its owner only)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race: use its key
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    key = bytes.fromhex(path.read_text().strip())
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

    def issue(self, user_id: int, role: Role, now: dt.datetime) -> tuple[str, dt.datetime]:
        expires_at = (now + self.ttl).replace(microsecond=0)
        claims = {"v": TOKEN_VERSION, "sub": user_id, "role": role.value, "exp": int(expires_at.timestamp())}
        return self._serializer.dumps(claims), expires_at

    def verify(self, token: str, now: dt.datetime) -> TokenClaims:
        try:
            claims = self._serializer.loads(token)
        except BadPayload:
            # Signed by us but unreadable: only a key shared with another format could do this.
            raise InvalidToken("unreadable token") from None
        except BadSignature:
            raise InvalidToken("bad token signature") from None
        try:
            version, user_id, role = claims["v"], int(claims["sub"]), Role(claims["role"])
            expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidToken(f"unreadable token: {type(error).__name__}") from None
        if version != TOKEN_VERSION:
            raise InvalidToken("unsupported token version")
        if expires_at <= now:
            raise InvalidToken("token expired")
        return TokenClaims(user_id, role, expires_at)
