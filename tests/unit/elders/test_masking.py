"""How resident IDs and phone numbers are masked for display (callcenter.elders.masking)."""

from __future__ import annotations

import pytest

from callcenter.elders.masking import mask_id_number, mask_phone


@pytest.mark.parametrize(("value", "masked"), [
    ("411002194912310025", "4110**********0025"),
    ("11010519491231002X", "1101**********002X"),
    ("110105491231002", "1101*******1002"),  # a 15-digit first-generation ID keeps its length
    ("123456789", "1234*6789"),
    ("12345678", "********"),  # nothing to keep without showing it all
    ("1234", "****"),
    ("", ""),
    (None, None),
])
def test_an_id_number_keeps_its_first_and_last_four(value: str | None, masked: str | None) -> None:
    assert mask_id_number(value) == masked


def test_a_masked_id_number_never_holds_the_birth_date() -> None:
    masked = mask_id_number("411002194912310025")
    assert masked is not None and "19491231" not in masked and len(masked) == 18


@pytest.mark.parametrize(("value", "masked"), [
    ("13900139000", "139****9000"),
    ("037165123456", "037****3456"),  # a landline with its area code: always four stars
    ("01065123456", "010****3456"),
    ("12345678", "123****5678"),
    ("1234567", "1234567"),  # shorter than any personal number: a service number
    ("12349", "12349"),
    ("120", "120"),
    (None, None),
])
def test_a_phone_number_keeps_three_and_four(value: str | None, masked: str | None) -> None:
    assert mask_phone(value) == masked
