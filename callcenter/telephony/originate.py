"""The one way the platform rings a phone: an asynchronous AMI Originate, built and sent here for every dialer
(SOS callbacks, conference parties, the supervisor's spy phone, the follow-up call).

Every Originate carries a ``ChannelId`` the dialer chose, so the new channel's events (and, after a lost answer,
the call log) name it without a lookup; it is sent once and never re-sent (see ``telephony.ami``): a failure of
the transport is raised for the dialer to judge, since only it knows whether an unknown outcome may be ringing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from callcenter.telephony.ami import AmiClient

# How long past the ring time the OriginateResponse may take (channel set-up, a slow trunk) before the action
# counts as timed out.
RESPONSE_GRACE_SECONDS = 15


class OriginateReason(StrEnum):
    """OriginateResponse ``Reason`` codes of a call not answered (Asterisk's AST_CONTROL_* numbers)."""

    FAILED = "0"  # no channel was made (an unknown or unregistered endpoint, a refused dial)
    HUNG_UP = "1"
    NO_ANSWER = "3"  # still ringing when the timeout struck
    BUSY = "5"
    CONGESTION = "8"


# What a person is told of an unanswered Originate, by its Reason code.
REASON_TEXTS: dict[str, str] = {
    OriginateReason.FAILED: "failed", OriginateReason.HUNG_UP: "hung up", OriginateReason.NO_ANSWER: "no answer",
    OriginateReason.BUSY: "busy", OriginateReason.CONGESTION: "congestion",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Originate:
    """One asynchronous Originate: ring ``channel`` for ``ring_seconds``; once answered it runs ``context``,
    ``exten``, ``priority`` with ``variables`` set on it, showing ``caller_name`` <``caller_number``>.

    ``channel_id`` becomes the new channel's uniqueid (and the call's linkedid); ``other_channel_id`` that of a
    Local channel's second half.
    """

    channel: str
    context: str
    channel_id: str
    ring_seconds: int
    caller_name: str
    caller_number: str
    variables: Mapping[str, str | int] = dataclasses.field(default_factory=dict)
    exten: str = "s"
    priority: str = "1"
    other_channel_id: str | None = None

    @property
    def caller_id(self) -> str:
        return f'"{self.caller_name}" <{self.caller_number}>'

    @property
    def response_timeout(self) -> float:
        """How long to wait for the OriginateResponse: the ring time and a grace."""
        return self.ring_seconds + RESPONSE_GRACE_SECONDS

    def action(self) -> dict[str, Any]:
        action: dict[str, Any] = {
            "Action": "Originate", "Channel": self.channel, "Context": self.context, "Exten": self.exten,
            "Priority": self.priority, "Async": "true", "Timeout": str(self.ring_seconds * 1000),
            "CallerID": self.caller_id, "ChannelId": self.channel_id,
        }
        if self.other_channel_id is not None:
            action["OtherChannelId"] = self.other_channel_id
        action["Variable"] = [f"{name}={value}" for name, value in self.variables.items()]
        return action


@dataclasses.dataclass(frozen=True, slots=True)
class OriginateResult:
    """The OriginateResponse: answered, or the ``reason`` code and ``message`` Asterisk gave (None when absent)."""

    answered: bool
    reason: str | None = None
    message: str | None = None

    @property
    def reason_text(self) -> str | None:
        """The reason in words, for a known code; None otherwise."""
        return REASON_TEXTS.get(self.reason or "")


async def originate(ami: AmiClient, request: Originate) -> OriginateResult:
    """Send ``request`` once and wait for its OriginateResponse.

    Asterisk refusing the action comes back as a result not answered, with its message. Raises
    ``AmiNotConnected`` when nothing was sent (nothing rings), ``AmiConnectionLost`` or ``AmiTimeout`` when the
    outcome is unknown (the phone may be ringing: never send it again).
    """
    response = await ami.send_action(request.action(), timeout=request.response_timeout, check=False)
    final = (response if isinstance(response, list) else [response])[-1]
    return OriginateResult(answered=final.get("Response") == "Success", reason=final.get("Reason"),
                           message=final.get("Message"))
