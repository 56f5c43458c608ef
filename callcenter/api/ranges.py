"""HTTP byte ranges (RFC 9110 §14) for binary downloads: one range per request, which is what players send."""

from __future__ import annotations

import dataclasses
import re

from callcenter.api.errors import RangeNotSatisfiable

_SPEC = re.compile(r"^[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")
# Positions are compared with sizes, never used as numbers beyond that: any position longer than this many digits
# (10**18 bytes is an exabyte) is "beyond every resource". Python refuses int() of more than 4,300 digits, and a
# header of 5,000 digits (aiohttp admits 8 KiB) would otherwise end in a 500 rather than a 416.
_MAX_DIGITS = 18
_BEYOND = 10**_MAX_DIGITS
_SHOWN = 40  # characters of the header an error message repeats


@dataclasses.dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive
    size: int  # of the whole resource

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``header`` asks for in a resource of ``size`` bytes; None means "send it all" (200).

    ``bytes=a-b`` (b clamped to the end), ``bytes=a-``, ``bytes=-n`` (the last n bytes). A header in another
    unit, or with several ranges, is ignored as RFC 9110 allows; a malformed or unsatisfiable one raises
    ``RangeNotSatisfiable`` (416).
    """
    if header is None or not header.strip():
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    match = _SPEC.match(spec)
    shown = _shown(header)
    if match is None or (not match[1] and not match[2]):
        raise RangeNotSatisfiable(f"malformed range {shown}", size=size)
    first, last = match[1], match[2]
    if not first:  # suffix: the last n bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {shown} selects nothing of {size} bytes", size=size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = _position(first)
    end = _position(last) if last else size - 1
    if end < start:
        raise RangeNotSatisfiable(f"range {shown} ends before it starts", size=size)
    if start >= size:
        raise RangeNotSatisfiable(f"range {shown} starts beyond the {size} bytes", size=size)
    return ByteRange(start, min(end, size - 1), size)


def _position(digits: str) -> int:
    """A byte position or suffix length, capped at ``_BEYOND`` (larger than any resource) however long."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else _BEYOND


def _shown(header: str) -> str:
    """The header as an error message repeats it: quoted, and cut short."""
    return repr(header_for_log(header))


def header_for_log(header: str | None) -> str | None:
    """A Range header as the audit trail and the log keep it: cut short, so 8 KiB of digits are not stored."""
    if header is None or len(header) <= _SHOWN:
        return header
    return header[:_SHOWN] + "…"
