from __future__ import annotations

import hashlib

import pytest

from callcenter.users.passwords import MIN_LENGTH, SIP_REALM, hash_password, sip_ha1, verify_password, weakness


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


@pytest.mark.parametrize("password", ["password123", "12345678901", "qwertyuiop", "woaini1314", "iloveyou2024",
                                      "1qaz2wsx3edc", "zhangsan1990", "Password1!", "abcdefghij"])
def test_common_and_guessable_passwords_are_refused_by_the_policy(password: str) -> None:
    assert weakness(password) is not None, password


def test_the_accounts_own_name_counts_against_its_password() -> None:
    assert weakness("liuxiaoming-2024", ["liuxiaoming", "刘晓明"]) is not None
    assert weakness("harbour-violet-sparrow") is None


def test_length_first_then_strength() -> None:
    assert weakness("x1-Q") == f"at least {MIN_LENGTH} characters"
    assert weakness("lantern-orchard-quietly-9") is None
    # A very long passphrase is judged on its first characters only, in bounded time.
    assert weakness("harbour violet sparrow " * 200) is None
