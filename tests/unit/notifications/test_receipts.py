"""Delivery receipts as SMSCs write them: both date forms, the receipted_message_id and message_state parameters
before the text, ids in hex or decimal, and a receipt that names no message."""

from __future__ import annotations

import dataclasses
import datetime as dt

from aiosmpplib import DeliverSm, OptionalParam
from aiosmpplib.state import MESSAGE_STATE, RECEIPTED_MESSAGE_ID

from callcenter.db.session import Database
from callcenter.notifications.channels import Receipt
from callcenter.notifications.models import MessageState, Purpose
from callcenter.notifications.services import NotificationService, provider_id_forms
from callcenter.notifications.smpp import parse_receipt
from callcenter.notifications.templates import Templates
from tests.unit.notifications.factory import message
from tests.unit.supervision_cases.factory import SHANGHAI


def _receipt(text: str, *params: OptionalParam) -> DeliverSm:
    return DeliverSm(short_message=text, esm_class=0b00000100, optional_params=list(params))


def test_the_text_is_read_with_dates_to_the_minute_or_the_second_in_the_centres_zone() -> None:
    minute = parse_receipt(_receipt("id:1A2B sub:001 dlvrd:001 submit date:2612081405 done date:2612081407 "
                                    "stat:DELIVRD err:000 text:hello"), SHANGHAI)
    assert minute is not None and (minute.provider_message_id, minute.status, minute.error) == ("1A2B", "DELIVRD",
                                                                                                "000")
    assert minute.done_at == dt.datetime(2026, 12, 8, 6, 7, tzinfo=dt.UTC)
    second = parse_receipt(_receipt("id:77 sub:001 dlvrd:000 submit date:261208140501 done date:261208140759 "
                                    "stat:UNDELIV err:034 text:"), SHANGHAI)
    assert second is not None and second.done_at == dt.datetime(2026, 12, 8, 6, 7, 59, tzinfo=dt.UTC)
    assert (second.status, second.error) == ("UNDELIV", "034")
    odd = parse_receipt(_receipt("id:9 stat:DELIVRD done date:tomorrow"), SHANGHAI)
    assert odd is not None and odd.done_at is None  # an unreadable date is no reason to refuse the receipt


def test_the_parameters_come_before_the_text_and_a_receipt_without_an_id_is_none() -> None:
    both = parse_receipt(_receipt("id:wrong stat:ENROUTE", OptionalParam(RECEIPTED_MESSAGE_ID, "right"),
                                  OptionalParam(MESSAGE_STATE, 2)), SHANGHAI)
    assert both is not None and (both.provider_message_id, both.status) == ("right", "DELIVRD")
    assert parse_receipt(_receipt("stat:DELIVRD err:000"), SHANGHAI) is None


def test_an_id_is_matched_in_hex_and_in_decimal() -> None:
    assert provider_id_forms("255") >= {"255", "ff", "FF"}
    assert "255" in provider_id_forms("ff") and "255" in provider_id_forms("FF")
    assert provider_id_forms("msg-1") == {"msg-1"}


async def test_a_receipt_finds_its_message_as_written_else_in_the_other_notation_if_unambiguous(db: Database) -> None:
    service = NotificationService(db, Templates.load(), channel="smpp")
    ids = {}
    for provider_id in ("255", "597", "ff00"):
        sent = await service.send(to="13900002222", template="sms_test", values={}, purpose=Purpose.REMINDER)
        await service.accepted(sent.id, provider_id)
        ids[provider_id] = sent.id
    delivered = Receipt(provider_message_id="", status="DELIVRD", error="000", done_at=None)
    # "255" is also hex for 597: the exact id wins.
    await service.receipt("smpp", dataclasses.replace(delivered, provider_message_id="255"))
    assert [(await message(db, ids[key])).state for key in ("255", "597")] == [MessageState.DELIVERED,
                                                                               MessageState.SUBMITTED]
    # The SMSC answered "ff00" and reports it in decimal.
    await service.receipt("smpp", dataclasses.replace(delivered, provider_message_id=str(0xFF00)))
    assert (await message(db, ids["ff00"])).state is MessageState.DELIVERED
    await service.receipt("smpp", dataclasses.replace(delivered, provider_message_id="nobody"))
    assert service.counters["receipts_unmatched"] == 1
