from __future__ import annotations

import hashlib

import pytest

from callcenter.users.passwords import SIP_REALM, hash_password, sip_ha1, verify_password


def test_passwords_are_hashed_with_argon2_and_verified() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong horse")
    assert not verify_password("not-a-hash", "correct horse")


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")
    with pytest.raises(ValueError, match="sip_password"):
        sip_ha1("dev", "short")


def test_sip_ha1_is_rfc2617() -> None:
    expected = hashlib.md5(f"dev-1:{SIP_REALM}:secret-123".encode()).hexdigest()
    assert sip_ha1("dev-1", "secret-123") == expected
