"""Schemas of the agents domain."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from callcenter.api.schemas import RequestSchema, ResponseSchema, text


class PauseRequest(RequestSchema):
    reason: text(100)  # type: ignore[valid-type]


class AgentOut(ResponseSchema):
    username: str
    interface: str
    status: str  # offline | unregistered | paused | wrap_up | available | ringing | on_call
    queues: list[str]
    paused: bool
    pause_reason: str | None
    registered: bool
    available: bool
    device_state: str
    since: dt.datetime
    wrap_up: bool = Field(description="after-call work: paused for the hotline, still taking SOS calls")
    wrap_up_until: dt.datetime | None = Field(description="when the wrap-up ends by itself")


class AgentList(ResponseSchema):
    items: list[AgentOut]
