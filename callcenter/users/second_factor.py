"""The optional second factor of admin and auditor accounts (issue 14): RFC 6238 TOTP with pyotp.

An account sets it up (a new base32 secret, shown once as an ``otpauth://`` URI for an authenticator app), confirms
it with a first code, and from then on every log-in needs a current code. A code is accepted for its 30-second
step and one step either side (clock drift), and never twice: the last step used is stored, so a code seen over a
shoulder cannot be replayed.
"""

from __future__ import annotations

import datetime as dt

import pyotp

from callcenter.users.models import Role

ROLES = frozenset({Role.ADMIN, Role.AUDITOR})
ISSUER = "养老服务平台"
STEP_SECONDS = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def step_of(now: dt.datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def accepted_step(secret: str, code: str, now: dt.datetime, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to when it is valid at ``now`` and newer than ``last_step``; else None."""
    code = code.strip()
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = step_of(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if (last_step is None or step > last_step) and pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
