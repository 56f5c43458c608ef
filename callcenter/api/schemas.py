"""Schemas every domain shares: the error body, pagination, and the base classes for requests and responses."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
)


def no_control_characters(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("control characters (newlines, tabs) are not allowed")
    return value


def text(max_length: int, min_length: int = 1) -> object:
    """A trimmed single-line string: what names, addresses and labels are. Passwords are never trimmed."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
                     AfterValidator(no_control_characters)]


Secret = Annotated[str, StringConstraints(min_length=8, max_length=128), AfterValidator(no_control_characters)]


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# Free text of several lines (what was said on a call, what was done): surrounding whitespace is not kept.
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
                 AfterValidator(not_blank)]


def refuse_null(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """For PATCH fields a record cannot be without: absent means unchanged, ``null`` is refused. Use as
    ``field_validator(*names, mode="wrap")(refuse_null)``."""
    if value is None:
        raise ValueError("may not be null")
    return handler(value)

# The largest value an INTEGER column holds on every backend (PostgreSQL's is 32 bits). Every integer a request
# carries is bounded by it: a larger one is the request's error (422, or 404 in a path), not the database's (500).
MAX_INT = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_INT)]  # a row's id in a body or a query string

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
# Every date-time is stored and compared in UTC, and deadlines are counted in days from it: one that UTC cannot
# hold with a year to spare (0001-01-01T00:00+08:00 is in the year 0 there) is refused before it is used.
_DATETIME: TypeAdapter[dt.datetime] = TypeAdapter(AwareDatetime)
_EARLIEST = dt.datetime(2, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9998, 12, 31, tzinfo=dt.UTC)


def _iso_8601(value: object) -> object:
    """Text read as a date-time here, so that a number is refused: pydantic reads "1700000000" (or "-1002254") as
    a Unix time, even in strict mode, and the document promises ISO 8601."""
    if not isinstance(value, str):
        return value
    if _NUMBER.fullmatch(value):
        raise ValueError("a date-time is ISO 8601 with an offset, e.g. 2026-03-01T08:00:00+08:00")
    try:
        return _DATETIME.validate_python(value)
    except ValidationError as error:
        raise ValueError(error.errors(include_url=False)[0]["msg"]) from None


def _in_utc_range(value: dt.datetime) -> dt.datetime:
    try:
        in_range = _EARLIEST <= value.astimezone(dt.UTC) <= _LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError("the date-time is out of range (years 2 to 9998 in UTC)")
    return value


# A date-time a request carries (body or query string): ISO 8601 text with an offset, within the years UTC holds.
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_in_utc_range)]


class RequestSchema(BaseModel):
    """A JSON body: unknown fields are an error (a typo must not be silently dropped), NaN/Infinity too."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class QuerySchema(BaseModel):
    """Query-string parameters: strings coerced to the declared types, unknown parameters rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ResponseSchema(BaseModel):
    """Built from ORM rows (``from_attributes``); only the declared fields ever leave the server."""

    model_config = ConfigDict(from_attributes=True, validate_by_name=True)


class PageQuery(QuerySchema):
    limit: int = Field(50, ge=1, le=200, description="page size")
    offset: int = Field(0, ge=0, le=MAX_INT, description="rows to skip")


class Page(ResponseSchema):
    """Subclasses add ``items: list[SomeOut]``."""

    total: int = Field(description="rows matching the filters, over all pages")
    limit: int
    offset: int

    @classmethod
    def of(cls, found: tuple[Sequence[object], int], query: PageQuery) -> Self:
        """A page from ``(rows, total)`` as ``db.paging.paginate`` returns them; rows may be ORM objects."""
        rows, total = found
        return cls.model_validate({"items": rows, "total": total, "limit": query.limit, "offset": query.offset},
                                  from_attributes=True)


class ErrorDetail(BaseModel):
    field: str | None = Field(description="dotted path of the offending field, e.g. contacts.0.phone")
    message: str


class Error(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. invalid, conflict, not_found")
    message: str
    field: str | None = Field(None, description="dotted path of the offending field, when one is to blame")
    details: list[ErrorDetail] | None = Field(None, description="every violation, when there were several")


class ErrorBody(BaseModel):
    error: Error
