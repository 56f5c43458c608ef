"""With SMS off (CC_SMS_CHANNEL=off, the default) a message is still checked, then stored as failed with the reason
"SMS is off" and reported on its order; /healthz says SMS is off, and passes."""

from __future__ import annotations

import pytest

from callcenter.api.errors import Invalid
from callcenter.db.session import Database
from callcenter.notifications.models import MessageState, Purpose
from callcenter.notifications.services import OFF_REASON, NotificationService
from callcenter.notifications.templates import Templates
from tests.unit.notifications.factory import ALARM_VALUES, an_order, message, number, sms_events


async def test_with_sms_off_a_message_is_stored_as_failed_and_reported(db: Database) -> None:
    service = NotificationService(db, Templates.load())  # off: the default
    await service.start()  # no channel, no job
    try:
        order_id = await an_order(db)
        sent = await service.send(to=number(), template="alarm_notice", values=ALARM_VALUES,
                                  purpose=Purpose.ALARM_NOTICE, work_order_id=order_id)
        row = await message(db, sent.id)
        assert (row.channel, row.state, row.attempts, row.last_error, row.next_attempt_at) == (
            "off", MessageState.FAILED, 0, OFF_REASON, None)
        [event] = await sms_events(db, order_id)
        assert event.details["reason"] == "SMS is off (CC_SMS_CHANNEL=off)" and event.details["sms_id"] == sent.id
        assert await service.run_once() == 0
        with pytest.raises(Invalid):  # still checked
            await service.send(to=number(), template="alarm_notice", values={}, purpose=Purpose.ALARM_NOTICE)
        check = (await service.health_checks())["sms"]
        assert check.ok and check.detail.startswith("off: CC_SMS_CHANNEL=off") and not check.critical
    finally:
        await service.stop()
