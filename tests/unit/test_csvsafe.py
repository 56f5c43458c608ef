"""callcenter.csvsafe: cells that would run as spreadsheet formulas are written as text."""

from __future__ import annotations

import pytest

from callcenter.csvsafe import safe_cell, safe_row


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1", '=cmd|" /C calc"!A0'])
def test_formula_starts_get_an_apostrophe(value: str) -> None:
    assert safe_cell(value) == "'" + value


def test_everything_else_is_left_alone() -> None:
    assert safe_row(["王秀英", "幸福路 1 号", "", 7, -3, 2.5, None, "a=b"]) == [
        "王秀英", "幸福路 1 号", "", 7, -3, 2.5, None, "a=b"]
