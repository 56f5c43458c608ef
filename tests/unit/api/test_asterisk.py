"""An AMI action a request needed failed: Asterisk's refusal is a 409, Asterisk out of reach a 503, for every
domain alike."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.api.asterisk import api_error_for, send_or_raise
from callcenter.api.errors import ApiError, Conflict, Unavailable
from callcenter.telephony.ami import (
    AmiActionFailed,
    AmiConnectionLost,
    AmiError,
    AmiEvent,
    AmiNotConnected,
    AmiTimeout,
)


def _refused(action: str, message: str) -> AmiActionFailed:
    return AmiActionFailed(action, AmiEvent({"Response": "Error", "Message": message}))


def test_a_refusal_is_a_conflict_naming_the_action_and_asterisks_words() -> None:
    error = api_error_for("QueueAdd", _refused("QueueAdd", "Unable to add interface: Not there"))
    assert isinstance(error, Conflict) and error.status == 409
    assert error.message == "Asterisk refused QueueAdd: AMI QueueAdd failed: Unable to add interface: Not there"


@pytest.mark.parametrize("failure", [AmiNotConnected("AMI is not connected; Redirect was not sent"),
                                     AmiTimeout("AMI Redirect got no response within 10.0s"),
                                     AmiConnectionLost("AMI connection lost before Redirect was answered")])
def test_asterisk_out_of_reach_is_a_503(failure: AmiError) -> None:
    error = api_error_for("Redirect", failure)
    assert isinstance(error, Unavailable) and error.status == 503
    assert error.message == f"Asterisk is not reachable: {failure}"


class _Ami:
    def __init__(self, error: AmiError | None = None) -> None:
        self.error = error
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def send_action(self, action: dict[str, Any], **options: Any) -> AmiEvent:
        self.sent.append((action, options))
        if self.error is not None:
            raise self.error
        return AmiEvent({"Response": "Success"})


async def test_one_single_answer_action_is_sent() -> None:
    ami = _Ami()
    await send_or_raise(ami, {"Action": "Hangup", "Channel": "ccs1", "Cause": "16"})  # type: ignore[arg-type]
    assert ami.sent == [({"Action": "Hangup", "Channel": "ccs1", "Cause": "16"}, {"single": True})]


async def test_a_tolerated_refusal_passes_and_any_other_failure_ends_the_request() -> None:
    action = {"Action": "QueueAdd", "Queue": "emergency"}
    await send_or_raise(_Ami(_refused("QueueAdd", "Already there")), action,  # type: ignore[arg-type]
                        tolerated="Already there")
    with pytest.raises(Conflict) as refused:
        await send_or_raise(_Ami(_refused("QueueAdd", "Unable to add interface")), action,  # type: ignore[arg-type]
                            tolerated="Already there")
    assert isinstance(refused.value.__cause__, AmiActionFailed)
    # Tolerating a refusal never hides an outage whose text happens to contain the words.
    with pytest.raises(Unavailable):
        await send_or_raise(_Ami(AmiTimeout("Already there")), action, tolerated="Already there")  # type: ignore[arg-type]
    with pytest.raises(ApiError) as untolerated:
        await send_or_raise(_Ami(_refused("QueueAdd", "Already there")), action)  # type: ignore[arg-type]
    assert untolerated.value.status == 409
