"""CSV a spreadsheet opens safely (issue 14): no cell of an export is run as a formula.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel and WPS, and
exports carry text that came from outside (a roster's cells, names, notes): ``=HYPERLINK("http://…")`` would run
on the operator's machine. Such a cell is written with a leading apostrophe, which spreadsheets show as text and
do not display (OWASP's advice for CSV injection).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet shows it without running it: strings only are changed, numbers are numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]
