"""Request and response schemas of the users domain: login, staff accounts. No secret ever leaves in a response."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, Field, StringConstraints, ValidationInfo, field_validator

from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, Secret, refuse_null, text
from callcenter.users.models import Role, SessionKind

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{2,63}$")]
# Rendered into pjsip_endpoints.conf as a section name and dialled as a number: digits only.
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{3,8}$")]


def _safe_caller_name(value: str) -> str:
    # The display name becomes the phone's caller ID in Asterisk config: quotes, brackets and ';' would break it.
    if any(ch in value for ch in '"<>;[]\\'):
        raise ValueError("may not contain \" < > ; [ ] or \\")
    return value


DisplayName = Annotated[text(100), AfterValidator(_safe_caller_name)]  # type: ignore[valid-type]


OtpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Language = Literal["zh-CN", "en"]


class LoginRequest(RequestSchema):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    otp: OtpCode | None = Field(None, description="the authenticator app's current code, for an account with a "
                                                  "second factor (asked for with 401 otp_required)")


class UserOut(ResponseSchema):
    id: int
    username: str
    display_name: str | None
    role: Role
    extension: str | None
    language: str
    active: bool
    second_factor_since: dt.datetime | None = Field(
        None, validation_alias=AliasChoices("second_factor_since", "totp_enabled_at"),
        description="when the account's second factor (TOTP) was turned on; null: off")
    password_changed_at: dt.datetime | None
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


class UserUpdate(RequestSchema):
    """Only the fields given change. Disabling an account or changing its role ends all of its sessions at once
    (tokens, panel pages, open WebSockets)."""

    display_name: DisplayName | None = None
    role: Role | None = None
    active: bool | None = None
    language: Language | None = None

    _not_null = field_validator("role", "active", "language", mode="wrap")(refuse_null)


class PasswordReset(RequestSchema):
    password: Secret = Field(description="at least 10 characters, not easy to guess (zxcvbn score 3 of 4)")


class PasswordChange(RequestSchema):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Secret = Field(description="at least 10 characters, not easy to guess (zxcvbn score 3 of 4)")


class SessionOut(ResponseSchema):
    id: str
    kind: SessionKind
    source_ip: str | None
    user_agent: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    current: bool = Field(False, description="the session of the token that asked")


class SessionList(ResponseSchema):
    items: list[SessionOut]


class SessionsEndedOut(ResponseSchema):
    ended: int = Field(description="how many live sessions were ended")


class Unlocked(ResponseSchema):
    username: str
    addresses_cleared: int = Field(description="addresses whose lock-out of this account was lifted")


class TotpSetup(ResponseSchema):
    secret: str = Field(description="base32; shown once: enter it in an authenticator app, or scan the uri")
    uri: str = Field(description="otpauth:// URI for a QR code")


class TotpConfirm(RequestSchema):
    code: OtpCode
