"""AMI channel events → the call log. One transaction per event, in arrival order."""

from __future__ import annotations

import datetime as dt

from panoramisk.message import Message

from callcenter.calls import services
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger

log = get_logger(__name__)

EVENTS = ("Newchannel", "Newstate", "Hangup")
CHANNEL_STATE_UP = "6"


def event_time(event: Message) -> dt.datetime:
    """Asterisk's own timestamp (manager.conf timestampevents=yes) when present: queueing delay never skews it."""
    raw = event.get("Timestamp")
    if raw:
        try:
            return dt.datetime.fromtimestamp(float(raw), dt.UTC)
        except ValueError:
            pass
    return utcnow()


def _number(value: str | None) -> str:
    return "" if not value or value in ("<unknown>", "unknown") else value


class CallEventRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def handle(self, event: Message) -> None:
        name = event.get("Event")
        uniqueid, linkedid = event.get("Uniqueid", ""), event.get("Linkedid", "")
        if not uniqueid or not linkedid:
            return
        at = event_time(event)
        channel = event.get("Channel", "")
        async with self._db.transaction() as session:
            if name == "Newchannel":
                await services.channel_created(
                    session, uniqueid=uniqueid, linkedid=linkedid, channel=channel,
                    caller_number=_number(event.get("CallerIDNum")), caller_name=_number(event.get("CallerIDName")),
                    callee_number=_number(event.get("Exten")), at=at,
                )
            elif name == "Newstate" and event.get("ChannelState") == CHANNEL_STATE_UP:
                await services.channel_answered(session, uniqueid=uniqueid, linkedid=linkedid, channel=channel, at=at)
            elif name == "Hangup":
                cause = event.get("Cause")
                call = await services.channel_hung_up(
                    session, uniqueid=uniqueid, linkedid=linkedid, channel=channel,
                    cause=int(cause) if cause and cause.isdigit() else None, cause_text=event.get("Cause-txt"), at=at,
                )
                if call.ended_at is not None:
                    log.info("call.ended", uniqueid=uniqueid, linkedid=linkedid, call_id=call.id,
                             disposition=call.disposition.value, elder_id=call.elder_id)
