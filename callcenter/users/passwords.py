"""Password hashing (Argon2id) and SIP digest credentials."""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SIP_REALM = "callcenter"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("password: at least 8 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sip_ha1(username: str, password: str, realm: str = SIP_REALM) -> str:
    """The MD5 digest HA1 (RFC 2617) PJSIP checks against, so SIP passwords are never stored in clear."""
    if len(password) < 8:
        raise ValueError("sip_password: at least 8 characters")
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()
