"""Schemas every domain shares: the error body, pagination, and the base classes for requests and responses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidatorFunctionWrapHandler


def no_control_characters(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("control characters (newlines, tabs) are not allowed")
    return value


def text(max_length: int, min_length: int = 1) -> object:
    """A trimmed single-line string: what names, addresses and labels are. Passwords are never trimmed."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
                     AfterValidator(no_control_characters)]


Secret = Annotated[str, StringConstraints(min_length=8, max_length=128), AfterValidator(no_control_characters)]


def refuse_null(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """For PATCH fields a record cannot be without: absent means unchanged, ``null`` is refused. Use as
    ``field_validator(*names, mode="wrap")(refuse_null)``."""
    if value is None:
        raise ValueError("may not be null")
    return handler(value)


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
    offset: int = Field(0, ge=0, description="rows to skip")


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
