"""SMS over SMPP 3.4 to a real SMSC process (tests/smpp_server.js): submitted, then delivered or failed by its
receipt; a refused destination tried again with backoff, then failed and reported on its order; receipts with
seconds in their dates; a receipt that arrives after the client was replaced still finds its message."""

from __future__ import annotations

import datetime as dt
import re

from callcenter.db.session import Database
from callcenter.notifications.models import MessageState, Purpose
from tests.smppserver import FAIL_SUFFIX, LATER_SUFFIX, SECONDS_SUFFIX, UNDELIV_SUFFIX, SmscServer
from tests.unit.notifications.factory import (
    ALARM_VALUES,
    RETRY,
    an_order,
    bound_channel,
    message,
    number,
    smpp_service,
    sms_events,
)
from tests.unit.supervision_cases.factory import SHANGHAI


async def test_a_message_is_queued_submitted_by_the_job_and_delivered_by_its_receipt(
        db: Database, smsc: SmscServer) -> None:
    service = smpp_service(db, smsc)
    await service.start()  # the channel and the sender job, as the platform starts them
    try:
        to = number()
        sent = await service.send(to=to, template="alarm_notice", values=ALARM_VALUES, purpose=Purpose.ALARM_NOTICE)
        assert sent.state is MessageState.QUEUED and sent.id is not None  # committed before anything is sent
        submitted = await smsc.events.next(smsc.events.about("submit", destination=to))
        # One UCS-2 segment with the whole text: no SAR parameters, no message_payload.
        assert submitted["text"] == sent.body == ("【养老服务中心】张某某于14:05发生跌倒报警，中心正在处理。"
                                                  "如有疑问请拨打12349。")
        assert (submitted["data_coding"], submitted["sar"], submitted["payload"]) == (8, False, "")
        assert submitted["source"] == "1069012349" and submitted["registered_delivery"] == 1
        await smsc.events.next(smsc.events.about("receipt_acked", message_id=submitted["message_id"], status=0))
        row = await message(db, sent.id)
        assert (row.state, row.provider_message_id, row.receipt_status, row.receipt_error, row.attempts) == (
            MessageState.DELIVERED, submitted["message_id"], "DELIVRD", "000", 1)
        assert row.receipt_at is not None and row.submitted_at is not None and row.last_error is None
        assert (await service.health_checks())["sms"].ok
    finally:
        await service.stop()


async def test_a_refused_destination_is_tried_again_with_backoff_then_failed_and_reported(
        db: Database, smsc: SmscServer) -> None:
    service = smpp_service(db, smsc, max_attempts=3)
    await bound_channel(service)
    try:
        order_id = await an_order(db)
        to = number(FAIL_SUFFIX)
        sent = await service.send(to=to, template="cascade_request", values=ALARM_VALUES, purpose=Purpose.CASCADE,
                                  work_order_id=order_id)
        start = dt.datetime.now(dt.UTC)
        assert await service.run_once(start) == 1
        await smsc.events.next(smsc.events.about("submit_refused", destination=to))
        row = await message(db, sent.id)
        assert (row.state, row.attempts, row.last_error) == (
            MessageState.QUEUED, 1, "refused by the SMSC: ESME_RSUBMITFAIL")
        assert row.next_attempt_at == start + RETRY
        assert await service.run_once(start + RETRY / 2) == 0  # not due yet
        assert await service.run_once(start + RETRY) == 1
        second = await message(db, sent.id)
        assert (second.state, second.attempts, second.next_attempt_at) == (
            MessageState.QUEUED, 2, start + RETRY + 2 * RETRY)  # the backoff doubles
        assert await sms_events(db, order_id) == []  # not reported while it is still being tried
        assert await service.run_once(start + 3 * RETRY) == 1
        failed = await message(db, sent.id)
        assert (failed.state, failed.attempts, failed.next_attempt_at) == (MessageState.FAILED, 3, None)
        assert await service.run_once(start + 100 * RETRY) == 0  # failed for good
        for _ in range(2):
            await smsc.events.next(smsc.events.about("submit_refused", destination=to))
        [event] = await sms_events(db, order_id)
        assert event.actor_label == "system" and event.details == {
            "sms_id": sent.id, "purpose": "cascade", "template": "cascade_request", "to": f"{to[:3]}****{to[-4:]}",
            "state": "failed", "attempts": 3, "reason": "refused by the SMSC: ESME_RSUBMITFAIL"}
    finally:
        await service.stop()


async def test_an_undelivered_receipt_fails_the_message_and_is_reported_on_its_order(
        db: Database, smsc: SmscServer) -> None:
    service = smpp_service(db, smsc)
    await bound_channel(service)
    try:
        order_id = await an_order(db)
        to = number(UNDELIV_SUFFIX)
        sent = await service.send(to=to, template="help_coming", purpose=Purpose.HELP_COMING, work_order_id=order_id,
                                  values={"elder_name": "李秀英", "responder": "女儿", "minutes": 20})
        assert await service.run_once() == 1
        submitted = await smsc.events.next(smsc.events.about("submit", destination=to))
        await smsc.events.next(smsc.events.about("receipt_acked", message_id=submitted["message_id"]))
        row = await message(db, sent.id)
        assert (row.state, row.receipt_status, row.receipt_error, row.last_error) == (
            MessageState.FAILED, "UNDELIV", "001", "receipt UNDELIV (error 001)")
        [event] = await sms_events(db, order_id)
        assert (event.details["state"], event.details["reason"], event.details["attempts"]) == (
            "failed", "receipt UNDELIV (error 001)", 1)
    finally:
        await service.stop()


async def test_a_receipt_dated_to_the_second_is_taken_without_dropping_the_link(
        db: Database, smsc: SmscServer) -> None:
    """aiosmpplib's own parser reads receipt dates only as YYMMDDhhmm and raises on seconds, before acknowledging:
    the channel parses receipts itself, so the receipt is taken once and the session stays bound."""
    service = smpp_service(db, smsc, signature="")  # English without the Chinese signature: GSM-7
    await bound_channel(service)
    try:
        to = number(SECONDS_SUFFIX)
        sent = await service.send(to=to, template="sms_test", values={}, purpose=Purpose.REMINDER, language="en")
        await service.run_once()
        submitted = await smsc.events.next(smsc.events.about("submit", destination=to))
        assert submitted["data_coding"] == 0 and submitted["text"] == sent.body  # GSM-7: the SMSC's default
        receipt = await smsc.events.next(smsc.events.about("receipt_sent", message_id=submitted["message_id"]))
        done = re.search(r"done date:(\d{12}) ", receipt["text"])
        assert done is not None, receipt["text"]
        # Acknowledged (the library's parser would have raised before the answer, and the link dropped).
        await smsc.events.next(smsc.events.about("receipt_acked", message_id=submitted["message_id"], status=0))
        row = await message(db, sent.id)
        assert row.state is MessageState.DELIVERED and row.receipt_at is not None
        assert row.receipt_at.astimezone(SHANGHAI).strftime("%y%m%d%H%M%S") == done.group(1)
        assert service.channel is not None and service.channel.check().ok  # still bound
    finally:
        await service.stop()


async def test_a_receipt_after_a_restart_finds_the_message_submitted_before_it(
        db: Database, smsc: SmscServer) -> None:
    """The SMSC's id is on the row, not in the client's memory: a new service and channel (a restarted platform)
    takes the receipt the SMSC kept for the next bind."""
    first = smpp_service(db, smsc)
    await bound_channel(first)
    to = number(LATER_SUFFIX)
    try:
        sent = await first.send(to=to, template="reminder", purpose=Purpose.REMINDER,
                                values={"elder_name": "王建国", "when": "明天上午", "what": "社区医生随访"})
        await first.run_once()
        submitted = await smsc.events.next(smsc.events.about("submit", destination=to))
        await smsc.events.next(smsc.events.about("receipt_held", message_id=submitted["message_id"]))
        assert (await message(db, sent.id)).state is MessageState.SUBMITTED
    finally:
        await first.stop()
    second = smpp_service(db, smsc)
    await bound_channel(second)
    try:
        await smsc.events.next(smsc.events.about("receipt_acked", message_id=submitted["message_id"], status=0))
        row = await message(db, sent.id)
        assert (row.state, row.provider_message_id, row.receipt_status) == (
            MessageState.DELIVERED, submitted["message_id"], "DELIVRD")
    finally:
        await second.stop()


async def test_a_wrong_password_is_refused_and_the_health_line_says_so(db: Database, smsc: SmscServer) -> None:
    service = smpp_service(db, smsc, password="wrong")
    channel = service.channel
    assert channel is not None
    await channel.start()
    try:
        await smsc.events.next(smsc.events.about("bind_refused", system_id="cc-test"))
        sent = await service.send(to=number(), template="sms_test", values={}, purpose=Purpose.REMINDER)
        assert await service.run_once() == 1
        row = await message(db, sent.id)
        assert row.state is MessageState.QUEUED and row.attempts == 1
        assert row.last_error is not None and row.last_error.startswith("not bound to the SMSC")
        check = (await service.health_checks())["sms"]
        assert not check.ok and "not bound" in check.detail and "ESME_RBINDFAIL" in check.detail
        assert not check.critical
    finally:
        await service.stop()

