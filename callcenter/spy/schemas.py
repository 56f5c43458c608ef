"""Schemas of the listen / whisper / barge API."""

from __future__ import annotations

import datetime as dt
import enum

from pydantic import Field

from callcenter.api.schemas import RequestSchema, ResponseSchema


class SpyMode(enum.StrEnum):
    LISTEN = "listen"  # the supervisor hears both; nobody hears the supervisor
    WHISPER = "whisper"  # only the agent hears the supervisor
    BARGE = "barge"  # both hear the supervisor


class SpyState(enum.StrEnum):
    RINGING = "ringing"  # the supervisor's phone is being called
    ACTIVE = "active"  # ChanSpy is attached to the agent's channel
    ENDED = "ended"


class SpyRequest(RequestSchema):
    mode: SpyMode = Field(description="listen | whisper | barge")


class SpyOut(ResponseSchema):
    id: str = Field(description="the supervisor's spy channel (its Asterisk uniqueid)")
    call_id: int
    supervisor: str
    agent_channel: str
    mode: SpyMode
    state: SpyState
    started_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None
