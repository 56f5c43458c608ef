"""Request and response schemas of the users domain: login, staff accounts. No secret ever leaves in a response."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator

from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, Secret, text
from callcenter.users.models import Role

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{2,63}$")]
# Rendered into pjsip_endpoints.conf as a section name and dialled as a number: digits only.
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{3,8}$")]


def _safe_caller_name(value: str) -> str:
    # The display name becomes the phone's caller ID in Asterisk config: quotes, brackets and ';' would break it.
    if any(ch in value for ch in '"<>;[]\\'):
        raise ValueError("may not contain \" < > ; [ ] or \\")
    return value


DisplayName = Annotated[text(100), AfterValidator(_safe_caller_name)]  # type: ignore[valid-type]


class LoginRequest(RequestSchema):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UserOut(ResponseSchema):
    id: int
    username: str
    display_name: str | None
    role: Role
    extension: str | None
    language: str
    active: bool
    created_at: dt.datetime


class LoginResponse(ResponseSchema):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    expires_at: dt.datetime
    user: UserOut


class UserCreate(RequestSchema):
    username: Username
    password: Secret
    role: Role
    display_name: DisplayName | None = None
    extension: Extension | None = Field(None, description="the agent's phone: PJSIP endpoint and digest user")
    sip_password: Secret | None = Field(None, validate_default=True, description="required with extension")

    @field_validator("sip_password")
    @classmethod
    def _with_extension(cls, value: str | None, info: ValidationInfo) -> str | None:
        extension = info.data.get("extension")
        if extension and value is None:
            raise ValueError("required when an extension is given")
        if value is not None and not extension and "extension" in info.data:
            raise ValueError("only meaningful with an extension")
        return value


class UserCreated(UserOut):
    provisioning: Literal["applied", "pending", "not_needed"] = Field(
        description="applied: Asterisk serves the phone now; pending: saved, Asterisk picks it up at its next "
                    "reload (AMI was unreachable); not_needed: no extension")


class UserPage(Page):
    items: list[UserOut]


class UserQuery(PageQuery):
    role: Role | None = None
