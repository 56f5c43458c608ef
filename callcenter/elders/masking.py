"""How personal numbers are shown to those who need to recognise them, not to use them (GB/T 35273 de-identified
display): pure functions, no I/O.

* A resident ID number keeps its first 4 characters (province and city) and its last 4 (three digits and the check
  digit); every character between is a star, so the length stays: ``411002194912310025`` → ``4110**********0025``.
  An ID of 8 characters or fewer (none is valid, but a file may hold anything) is all stars.
* A phone number of 8 digits or more (mobiles, landlines with their area code) keeps its first 3 and its last 4
  digits with exactly four stars between: ``13900139000`` → ``139****9000``, ``037165123456`` → ``037****3456``.
  A shorter one is a public service number (120, 12349, 95598: the phone rules allow no shorter personal number)
  and is shown as it is.

Masked values are for display only: they are never written back (a masked ID fails the check-digit validation).
"""

from __future__ import annotations

STAR = "*"
ID_KEPT_HEAD = 4
ID_KEPT_TAIL = 4
PHONE_KEPT_HEAD = 3
PHONE_KEPT_TAIL = 4
PHONE_STARS = 4
SHORTEST_PERSONAL_PHONE = 8


def mask_id_number(value: str | None) -> str | None:
    """``4110**********0025`` for an 18-character resident ID; None stays None."""
    if value is None:
        return None
    if len(value) <= ID_KEPT_HEAD + ID_KEPT_TAIL:
        return STAR * len(value)
    hidden = len(value) - ID_KEPT_HEAD - ID_KEPT_TAIL
    return value[:ID_KEPT_HEAD] + STAR * hidden + value[-ID_KEPT_TAIL:]


def mask_phone(value: str | None) -> str | None:
    """``139****9000`` for a personal number; service numbers as they are; None stays None."""
    if value is None:
        return None
    if len(value) < SHORTEST_PERSONAL_PHONE:
        return value
    return value[:PHONE_KEPT_HEAD] + STAR * PHONE_STARS + value[-PHONE_KEPT_TAIL:]
