"""HTTP byte ranges (RFC 9110 §14) for binary downloads: one range per request, which is what players send."""

from __future__ import annotations

import dataclasses
import re

from callcenter.api.errors import RangeNotSatisfiable

_SPEC = re.compile(r"^[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")


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
    if match is None or (not match[1] and not match[2]):
        raise RangeNotSatisfiable(f"malformed range {header!r}", size=size)
    first, last = match[1], match[2]
    if not first:  # suffix: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {header!r} selects nothing of {size} bytes", size=size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = int(first)
    end = int(last) if last else size - 1
    if end < start:
        raise RangeNotSatisfiable(f"range {header!r} ends before it starts", size=size)
    if start >= size:
        raise RangeNotSatisfiable(f"range {header!r} starts beyond the {size} bytes", size=size)
    return ByteRange(start, min(end, size - 1), size)
