"""Schemas of the agents domain."""

from __future__ import annotations

import datetime as dt

from callcenter.api.schemas import RequestSchema, ResponseSchema, text


class PauseRequest(RequestSchema):
    reason: text(100)  # type: ignore[valid-type]


class AgentOut(ResponseSchema):
    username: str
    interface: str
    status: str  # offline | unregistered | paused | available | ringing | on_call
    queues: list[str]
    paused: bool
    pause_reason: str | None
    registered: bool
    available: bool
    device_state: str
    since: dt.datetime


class AgentList(ResponseSchema):
    items: list[AgentOut]
