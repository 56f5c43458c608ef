from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from callcenter.api.schemas import RequestSchema, ResponseSchema, text

# As the trunk dials it: digits only, optionally a leading + (stored without it).
PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,20}$")]


class AllowedNumberCreate(RequestSchema):
    number: PhoneNumber = Field(description="digits only (a leading + allowed), as the trunk dials it")
    label: text(100) = Field(description="whose number it is, e.g. 社区居委会值班电话")  # type: ignore[valid-type]
    reason: text(200) = Field(description="why agents may dial it")  # type: ignore[valid-type]
    expires_at: dt.datetime | None = Field(None, description="refused again after this moment; none: until withdrawn")


class AllowedNumberOut(ResponseSchema):
    id: int
    number: str
    label: str
    reason: str
    added_by_id: int | None
    created_at: dt.datetime
    expires_at: dt.datetime | None


class AllowedNumberList(ResponseSchema):
    items: list[AllowedNumberOut]
