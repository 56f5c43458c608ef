"""Schemas of the wallboard: one snapshot, the same in ``GET /api/v1/wallboard`` and in the ``wallboard`` push.

Times are timestamps (UTC, ISO 8601): the page counts elapsed seconds itself from them, so nothing is pushed
just because a clock moved. ``*_seconds`` fields are the same durations as of ``generated_at``, for API clients.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from callcenter.api.schemas import ResponseSchema

CallState = Literal["waiting", "talking", "connecting"]
AlarmCode = Literal["disk_low", "disk_full", "disk_unknown"]


class WaitingCallerOut(ResponseSchema):
    linkedid: str
    call_id: int | None = Field(description="the call in the call log, once it is there")
    sos: bool
    position: int = Field(description="place in the queue, 1 first (Asterisk's)")
    caller_number: str | None
    caller_name: str | None
    elder_name: str | None
    joined_at: dt.datetime = Field(description="when the caller joined this queue (Asterisk's clock)")
    wait_seconds: int = Field(description="seconds waited so far, as of generated_at")


class TodayOut(ResponseSchema):
    """Calls of this queue that started today (the centre's local day); a call belongs to the queue that answered
    it, else the first it joined."""

    offered: int = Field(description="calls that queued here today")
    answered: int = Field(description="of them, answered")
    answered_within_15s: int = Field(description="answered by an agent after at most 15 s in the queue")
    answered_within_60s: int = Field(description="answered by an agent after at most 60 s in the queue")
    abandoned: int = Field(description="ended without anyone answering")


class QueueOut(ResponseSchema):
    name: str = Field(description="emergency (SOS), hotline, or supervisors (SOS overflow)")
    waiting: int
    longest_wait_since: dt.datetime | None = Field(description="when the longest-waiting caller joined")
    longest_wait_seconds: int | None = Field(description="how long they have waited, as of generated_at")
    callers: list[WaitingCallerOut] = Field(description="waiting callers, first in line first")
    agents_logged_in: int
    agents_available: int
    today: TodayOut


class LiveCallOut(ResponseSchema):
    linkedid: str
    call_id: int
    kind: str = Field(description="sos, hotline, …")
    sos: bool
    caller_number: str | None
    caller_name: str | None
    elder_name: str | None
    started_at: dt.datetime
    state: CallState = Field(description="waiting in a queue, talking to an agent, or connecting (the menu, "
                                         "ringing an overflow step)")
    state_since: dt.datetime
    queue: str | None
    agent: str | None = Field(description="the agent's username while talking")


class WallboardAgentOut(ResponseSchema):
    username: str
    status: str = Field(description="offline | unregistered | paused | wrap_up | available | ringing | on_call")
    since: dt.datetime = Field(description="when the agent entered this status")
    queues: list[str]
    pause_reason: str | None
    call_id: int | None = Field(description="the call the agent is talking on")
    sos: bool = Field(description="that call is an SOS")


class AlarmOut(ResponseSchema):
    """Something supervisors must act on although calls still flow (callcenter.health.disk)."""

    code: AlarmCode = Field(description="disk_low: below its threshold (CC_*_MIN_FREE_MB); disk_full: writes fail "
                                        "(recordings are lost while the spool is full); disk_unknown: not measurable")
    part: str = Field(description="spool (Asterisk's recordings spool), storage (CC_RECORDINGS_DIR) or data "
                                  "(CC_DATA_DIR)")
    severity: Literal["warning", "critical"]
    since: dt.datetime = Field(description="when the disk reached this level")
    free_mb: int | None = Field(description="free space when last measured, in MiB (None when unknown)")
    min_free_mb: int = Field(description="the threshold below which the disk is low")


class WallboardOut(ResponseSchema):
    generated_at: dt.datetime
    timezone: str = Field(description="the centre's time zone (CC_TIMEZONE): today's counts start at its midnight")
    day_start: dt.datetime = Field(description="the start of today in that time zone")
    ami_connected: bool = Field(description="false: the link to Asterisk is down and the live part may be stale")
    calls: list[LiveCallOut] = Field(description="calls in progress, SOS first, then the oldest first")
    queues: list[QueueOut]
    agents: list[WallboardAgentOut]
    alarms: list[AlarmOut] = Field(default_factory=list, description="disks low or full, most serious first")
