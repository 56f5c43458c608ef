"""/api/v1/notifications: the SMS about an order or an alarm with their delivery state, for the centre's staff who
read orders (not providers); numbers masked; filters refused naming the field."""

from __future__ import annotations

import datetime as dt

from callcenter.notifications.models import MessageState, Purpose, SmsMessage
from callcenter.notifications.services import SMS
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.notifications.factory import ALARM_VALUES, an_order


async def test_the_messages_of_an_order_are_listed_with_their_delivery_state(api: Api) -> None:
    order_id, other_order = await an_order(api.db), await an_order(api.db)
    service = api.client.app[SMS]  # off in the API's settings: stored as failed, "SMS is off"
    off = await service.send(to="13800138000", template="alarm_notice", values=ALARM_VALUES,
                             purpose=Purpose.ALARM_NOTICE, work_order_id=order_id)
    async with api.db.transaction() as session:
        delivered = SmsMessage(channel="smpp", purpose=Purpose.CASCADE, template="cascade_request", language="zh-CN",
                               recipient="13912345678", body="【养老服务中心】张某某…", params={},
                               work_order_id=order_id, state=MessageState.DELIVERED, attempts=1,
                               provider_message_id="a1", receipt_status="DELIVRD", receipt_error="000",
                               receipt_at=dt.datetime.now(dt.UTC))
        session.add_all([delivered, SmsMessage(channel="smpp", purpose=Purpose.CASCADE, template="sms_test",
                                               language="zh-CN", recipient="13900000000", body="x", params={},
                                               work_order_id=other_order, state=MessageState.QUEUED)])
        await session.flush()
        delivered_id = delivered.id
    status, page = await api.request("GET", "/api/v1/notifications", role=Role.AGENT,
                                     params={"work_order_id": str(order_id)})
    assert status == 200 and page["total"] == 2
    assert [item["id"] for item in page["items"]] == [delivered_id, off.id]  # newest first
    first, second = page["items"]
    assert (first["state"], first["receipt_status"], first["recipient"], first["provider_message_id"]) == (
        "delivered", "DELIVRD", "139****5678", "a1")
    assert (second["state"], second["channel"], second["last_error"], second["recipient"]) == (
        "failed", "off", "SMS is off (CC_SMS_CHANNEL=off)", "138****8000")
    assert "params" not in first
    for role in (Role.SUPERVISOR, Role.AUDITOR):
        assert (await api.request("GET", "/api/v1/notifications", role=role))[1]["total"] == 3
    assert (await api.request("GET", "/api/v1/notifications", role=Role.PROVIDER))[0] == 403
    status, body = await api.request("GET", "/api/v1/notifications", role=Role.AGENT,
                                     params={"alarm_id": "none"})
    assert status == 422 and body["error"]["field"] == "alarm_id"


async def test_healthz_has_an_sms_line_that_says_off(api: Api) -> None:
    _status, body = await api.request("GET", "/healthz", role=None)  # 503 here: the tests' AMI is not up
    sms = body["checks"]["sms"]
    assert "sms" not in body["failing"] and not sms["critical"]
    assert sms["ok"] and sms["detail"].startswith("off: CC_SMS_CHANNEL=off")
