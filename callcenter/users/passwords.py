"""Password hashing (Argon2id), the password policy, and SIP digest credentials.

The policy (issue 14): at least ``MIN_LENGTH`` characters and a zxcvbn score of at least ``MIN_SCORE`` (of 4),
the account's own username and name counting against it. zxcvbn's dictionaries hold the 30,000 most common leaked
passwords, English words, names, keyboard patterns, dates and l33t spellings: "password123", "qwertyuiop",
"1qaz2wsx3edc" and "woaini1314" are refused. zxcvbn knows no Chinese names, so the commonest shape of Chinese
leaked passwords — a pinyin surname, a given name and digits ("zhangsan1990", "wangfang520") — is refused by
``PINYIN_NAME_AND_DIGITS``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SIP_REALM = "callcenter"
_hasher = PasswordHasher()


MIN_LENGTH = 10
MIN_SCORE = 3
# The 40 commonest surnames (about 70 % of the population) in pinyin, then letters, then only digits.
_SURNAMES = ("wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo zheng liang xie song "
             "tang han feng deng cao peng zeng xiao tian dong yuan pan cai jiang yu du")
PINYIN_NAME_AND_DIGITS = re.compile(rf"^(?:{'|'.join(_SURNAMES.split())})[a-z]{{0,12}}[0-9._-]{{1,10}}$",
                                    re.IGNORECASE)
# zxcvbn's time grows with the length: a longer password is judged on its first characters (already strong).
JUDGED_CHARACTERS = 64


def weakness(password: str, user_inputs: Iterable[str | None] = ()) -> str | None:
    """Why ``password`` is refused by the policy, or None when it is strong enough. CPU-bound: call it off the
    event loop (``asyncio.to_thread``)."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if PINYIN_NAME_AND_DIGITS.match(password):
        return "too easy to guess (a name and digits): use a longer phrase of unrelated words"
    # Imported here, not at the top: its dictionaries take about 11 MB, which every platform process (and the
    # benchmark's memory figures) would carry from start-up although passwords are set rarely.
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:JUDGED_CHARACTERS], user_inputs=[value for value in user_inputs if value])
    if result["score"] >= MIN_SCORE:
        return None
    warning = result["feedback"].get("warning") or "easy to guess"
    return f"too easy to guess ({warning.rstrip('.').lower()}): use a longer phrase of unrelated words"


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
