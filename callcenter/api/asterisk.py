"""What a request is answered when an AMI action it needed fails: the one translation of the transport's errors
(``telephony.ami``) into API errors, so every domain answers a refusal and an outage alike.

Asterisk refusing the action (it is up, the request does not fit its state) is a 409; no answer from Asterisk
(not connected, the link lost, no response in time) is a 503.
"""

from __future__ import annotations

from typing import Any

from callcenter.api.errors import ApiError, Conflict, Unavailable
from callcenter.telephony.ami import AmiActionFailed, AmiClient, AmiError


def api_error_for(action: str, error: AmiError) -> ApiError:
    """The API error for ``action`` (an AMI action name) having failed with ``error``."""
    if isinstance(error, AmiActionFailed):
        return Conflict(f"Asterisk refused {action}: {error}")
    return Unavailable(f"Asterisk is not reachable: {error}")


async def send_or_raise(ami: AmiClient, action: dict[str, Any], *, tolerated: str | None = None) -> None:
    """Send one action with a single-message answer; its failure ends the request (``api_error_for``).

    ``tolerated``: a refusal whose text contains it is no failure (QueueAdd's "Already there").
    """
    try:
        await ami.send_action(action, single=True)
    except AmiError as error:
        if tolerated is not None and isinstance(error, AmiActionFailed) and tolerated in str(error):
            return
        raise api_error_for(str(action["Action"]), error) from error
