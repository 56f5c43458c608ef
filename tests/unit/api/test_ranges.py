"""HTTP Range parsing for binary downloads (RFC 9110 §14)."""

from __future__ import annotations

import pytest

from callcenter.api.errors import RangeNotSatisfiable
from callcenter.api.ranges import ByteRange, parse_range


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-99", (0, 99)),
    ("bytes=0-0", (0, 0)),
    ("bytes=100-", (100, 999)),
    ("bytes=-10", (990, 999)),
    ("bytes=-5000", (0, 999)),  # a suffix longer than the resource is all of it
    ("bytes=500-5000", (500, 999)),  # the end is clamped
    ("bytes=999-999", (999, 999)),
    ("Bytes = 1 - 2 ", (1, 2)),
])
def test_satisfiable_ranges(header: str, expected: tuple[int, int]) -> None:
    byte_range = parse_range(header, 1000)
    assert byte_range == ByteRange(*expected, 1000)
    assert byte_range.content_range == f"bytes {expected[0]}-{expected[1]}/1000"
    assert byte_range.length == expected[1] - expected[0] + 1


@pytest.mark.parametrize("header", [None, "", "  ", "items=0-5", "bytes=0-1,5-6", "0-5"])
def test_absent_foreign_or_multiple_ranges_mean_the_whole_resource(header: str | None) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000), ("bytes=5-4", 1000), ("bytes=-", 1000),
    ("bytes=abc", 1000), ("bytes=1-x", 1000), ("bytes=+1-2", 1000), ("bytes=-1-2", 1000), ("bytes=١-٢", 1000),
    ("bytes=0-", 0), ("bytes=-1", 0),
])
def test_unsatisfiable_or_malformed_ranges_are_416_with_the_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size)
    assert raised.value.status == 416
    assert raised.value.headers() == {"Content-Range": f"bytes */{size}"}


DIGITS = "9" * 5000  # beyond the 4,300 digits Python's int() accepts: once a 500


@pytest.mark.parametrize(("header", "expected"), [
    (f"bytes=0-{DIGITS}", (0, 999)),  # an end past the resource is clamped, however long
    (f"bytes=-{DIGITS}", (0, 999)),  # a suffix longer than the resource is all of it
    (f"bytes={'0' * 5000}7-8", (7, 8)),  # leading zeros are no number's size
])
def test_positions_of_thousands_of_digits_are_compared_not_converted(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, 1000) == ByteRange(*expected, 1000)


@pytest.mark.parametrize("header", [f"bytes={DIGITS}-", f"bytes={DIGITS}-{DIGITS}", f"bytes={DIGITS}-5",
                                    f"bytes={'1' * 19}-"])
def test_a_start_of_thousands_of_digits_is_416_with_a_short_message(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, 1000)
    assert raised.value.headers() == {"Content-Range": "bytes */1000"}
    assert len(raised.value.message) < 200  # the header is not echoed whole into the answer
