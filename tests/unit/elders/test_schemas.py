"""Phone numbers and resident ID numbers as a Chinese civil-affairs roster writes them."""

from __future__ import annotations

import pytest

from callcenter.elders.schemas import normalise_phone, resident_id_check_digit, validate_resident_id


@pytest.mark.parametrize(("raw", "stored"), [
    ("13800138000", "13800138000"), ("138 0013 8000", "13800138000"), ("+86 138-0013-8000", "13800138000"),
    ("008619912345678", "19912345678"), ("010-65123456", "01065123456"), ("(0371) 6512 3456", "037165123456"),
    ("0755-2345678", "07552345678"), ("120", "120"), ("12349", "12349"), ("95598", "95598"),
])
def test_accepted_numbers_are_stored_as_digits(raw: str, stored: str) -> None:
    assert normalise_phone(raw) == stored


@pytest.mark.parametrize("raw", ["12800138000", "1380013800", "138001380001", "65123456", "010-1234", "abc",
                                 "1380013800O", "+1 415 555 0100", "", "１３８００１３８０００"])
def test_rejected_numbers(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_phone(raw)


def test_resident_id_check_digit_gb_11643() -> None:
    # The standard's own example: 11010519491231002X.
    assert resident_id_check_digit("11010519491231002") == "X"
    assert validate_resident_id("11010519491231002x") == "11010519491231002X"
    # By hand: Σ digit×weight = 170, 170 mod 11 = 5, and position 5 of "10X98765432" is 7.
    assert resident_id_check_digit("44030419800101001") == "7"
    assert validate_resident_id("440304198001010017") == "440304198001010017"


@pytest.mark.parametrize(("raw", "fragment"), [
    ("110105194912310021", "check digit"), ("440304198001010018", "check digit"),
    ("1101051949123100", "17 digits"), ("11010519491331002X", "birth date"), ("X10105194912310021", "17 digits"),
])
def test_bad_resident_ids(raw: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        validate_resident_id(raw)
