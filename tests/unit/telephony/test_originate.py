"""The one Originate builder: what each dialer sends, the OriginateResponse it reads, and the reason table."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callcenter.calls.callbacks import PendingCallback, callback_request
from callcenter.conferences.services import party_request
from callcenter.config import Settings
from callcenter.follow_up_calls.services import originate_request
from callcenter.spy.schemas import SpyMode
from callcenter.spy.services import SpySession, spy_request
from callcenter.telephony.ami import AmiClient, AmiEvent, AmiTimeout
from callcenter.telephony.originate import (
    REASON_TEXTS,
    Originate,
    OriginateReason,
    OriginateResult,
    originate,
)
from tests.unit.telephony.test_ami import (  # noqa: F401 - the scripted AMI peer's fixtures
    TEST_TIMEOUT,
    ClientFactory,
    FakeAsterisk,
    asterisk,
    connected_client,
    make_client,
    success,
)

SETTINGS = Settings.from_env({"CC_CENTRE_NAME": "Centre", "CC_CENTRE_NUMBER": "12349"})


# -- what each dialer sends: the fields the hand-built dicts sent before the builder ---------------------------
def test_the_sos_callback_rings_the_agent_into_cc_callback_showing_the_order() -> None:
    pending = PendingCallback(order_id=42, call_id=7, linkedid="1700000000.7", target="PJSIP/dev-7", attempts=1)
    request = callback_request(pending, channel_id="ccb42-1-abcdef", interface="PJSIP/8001", ring_seconds=25)
    assert request.action() == {
        "Action": "Originate", "Channel": "PJSIP/8001", "Context": "cc-callback", "Exten": "s", "Priority": "1",
        "Timeout": "25000", "Async": "true", "CallerID": '"SOS回拨" <42>', "ChannelId": "ccb42-1-abcdef",
        "Variable": ["CC_CALLBACK_TARGET=PJSIP/dev-7", "CC_ORDER_ID=42", "CC_CALLBACK_OF=1700000000.7"],
    }
    assert request.response_timeout == 40


def test_a_conference_party_is_dialled_through_the_trunk_into_its_room_as_the_centre() -> None:
    request = party_request(number="13900139000", room="cc-5", channel_id="ccp9-0a0b0c0d", settings=SETTINGS)
    assert request.action() == {
        "Action": "Originate", "Channel": "PJSIP/13900139000@trunk", "Context": "cc-conference", "Exten": "party",
        "Priority": "1", "Async": "true", "Timeout": "30000", "CallerID": '"Centre" <12349>',
        "ChannelId": "ccp9-0a0b0c0d", "Variable": ["CC_CONF_ROOM=cc-5"],
    }
    assert request.response_timeout == 45


@pytest.mark.parametrize(("mode", "options"), [(SpyMode.LISTEN, "qE"), (SpyMode.WHISPER, "qEw"),
                                                (SpyMode.BARGE, "qEB")])
def test_the_supervisors_phone_is_rung_into_cc_spy_with_the_modes_options(mode: SpyMode, options: str) -> None:
    spy = SpySession(id="ccs0123456789ab", call_id=3, linkedid="1700000000.3", supervisor="sup", supervisor_id=2,
                     source_ip=None, agent_channel="PJSIP/8001-00000001", mode=mode)
    assert spy_request(spy, extension="8101", settings=SETTINGS).action() == {
        "Action": "Originate", "Channel": "PJSIP/8101", "Context": "cc-spy", "Exten": "s", "Priority": "1",
        "Async": "true", "Timeout": "30000", "ChannelId": "ccs0123456789ab", "CallerID": '"Centre" <12349>',
        "Variable": ["CC_SPY_TARGET=PJSIP/8001-00000001", f"CC_SPY_OPTIONS={options}"],
    }


def test_the_follow_up_call_rings_the_agent_into_cc_follow_up_showing_the_order_and_number() -> None:
    assert originate_request(channel_id="ccf7-0a1b2c3d", extension="8301", number="13900139000",
                             order_number="WO-2024-0007", order_id=7).action() == {
        "Action": "Originate", "Channel": "PJSIP/8301", "Context": "cc-follow-up", "Exten": "s", "Priority": "1",
        "Async": "true", "Timeout": "30000", "ChannelId": "ccf7-0a1b2c3d",
        "CallerID": '"回访 WO-2024-0007" <13900139000>',
        "Variable": ["CC_FOLLOW_UP_NUMBER=13900139000", "CC_ORDER_ID=7"],
    }


def test_the_second_channel_id_is_sent_only_when_given() -> None:
    plain = Originate(channel="Local/s@cc-x", context="cc-y", channel_id="ccx1", ring_seconds=5, caller_name="n",
                      caller_number="1")
    assert "OtherChannelId" not in plain.action() and plain.action()["Variable"] == []
    local = Originate(channel="Local/s@cc-x", context="cc-y", channel_id="ccx1", ring_seconds=5, caller_name="n",
                      caller_number="1", other_channel_id="ccx1-2")
    assert local.action()["OtherChannelId"] == "ccx1-2" and local.action()["ChannelId"] == "ccx1"


# -- the reason table ---------------------------------------------------------------------------------------------
def test_every_reason_code_has_its_words_and_unknown_codes_none() -> None:
    assert {code.value: REASON_TEXTS[code] for code in OriginateReason} == {
        "0": "failed", "1": "hung up", "3": "no answer", "5": "busy", "8": "congestion"}
    # Looked up with the header's plain string, as it comes from Asterisk.
    assert REASON_TEXTS.get("5") == "busy" and OriginateReason("3") is OriginateReason.NO_ANSWER
    assert OriginateResult(answered=False, reason="8").reason_text == "congestion"
    assert OriginateResult(answered=False, reason="4").reason_text is None
    assert OriginateResult(answered=False).reason_text is None


# -- sending and reading the answer --------------------------------------------------------------------------------
class _RecordingAmi:
    """Answers every action with ``response`` (or raises ``error``), keeping what was sent and how."""

    def __init__(self, response: Any = None, error: Exception | None = None) -> None:
        self.response = response
        self.error = error
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def send_action(self, action: dict[str, Any], timeout: float | None = None, **options: Any) -> Any:
        self.sent.append((action, {"timeout": timeout, **options}))
        if self.error is not None:
            raise self.error
        return self.response


REQUEST = Originate(channel="PJSIP/8001", context="cc-x", channel_id="ccx1-abc", ring_seconds=20,
                    caller_name="n", caller_number="1")


async def test_the_final_message_decides_and_the_response_is_not_checked_by_the_transport() -> None:
    ami = _RecordingAmi([AmiEvent({"Response": "Success", "Message": "Originate successfully queued"}),
                         AmiEvent({"Event": "OriginateResponse", "Response": "Failure", "Reason": "5"})])
    result = await originate(ami, REQUEST)  # type: ignore[arg-type]
    assert result == OriginateResult(answered=False, reason="5", message=None)
    assert result.reason_text == "busy"
    assert ami.sent == [(REQUEST.action(), {"timeout": 35, "check": False})]


async def test_an_answered_originate_and_a_refusal_in_one_message() -> None:
    answered = await originate(_RecordingAmi(AmiEvent({"Response": "Success"})), REQUEST)  # type: ignore[arg-type]
    assert answered == OriginateResult(answered=True)
    refused = await originate(_RecordingAmi(AmiEvent({"Response": "Error", "Message": "Permission denied"})),
                              REQUEST)  # type: ignore[arg-type]
    assert refused == OriginateResult(answered=False, reason=None, message="Permission denied")


async def test_a_transport_failure_reaches_the_dialer_which_alone_knows_what_it_means() -> None:
    with pytest.raises(AmiTimeout):
        await originate(_RecordingAmi(error=AmiTimeout("no answer in time")), REQUEST)  # type: ignore[arg-type]


async def test_over_the_wire_the_originate_waits_for_its_originate_response(
        asterisk: FakeAsterisk, make_client: ClientFactory) -> None:  # noqa: F811 - the fixtures imported above
    asterisk.replies["originate"] = success(Message="Originate successfully queued")
    async with asyncio.timeout(TEST_TIMEOUT):
        client: AmiClient = await connected_client(make_client)
        pending = asyncio.create_task(originate(client, REQUEST))
        await asterisk.wait_until(lambda: asterisk.count("Originate") == 1)
        [sent] = asterisk.received("Originate")
        await asyncio.sleep(0.1)  # the queued answer has arrived
        assert not pending.done()  # queued is not answered: the OriginateResponse decides
        await asterisk.push({"Event": "OriginateResponse", "ActionID": sent["ActionID"], "Response": "Failure",
                             "Reason": "3", "Channel": "PJSIP/8001", "Uniqueid": "ccx1-abc"})
        result = await pending
    assert result.reason_text == "no answer" and not result.answered
    assert {key: sent[key] for key in ("Channel", "Context", "Exten", "Priority", "Async", "Timeout", "CallerID",
                                       "ChannelId")} == {key: str(value) for key, value in REQUEST.action().items()
                                                         if key not in ("Action", "Variable")}
