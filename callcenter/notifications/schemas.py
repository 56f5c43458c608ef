"""The schemas of /api/v1/notifications: the SMS sent about an order, an alarm or an elder, and what became of them."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator

from callcenter.api.schemas import Page, PageQuery, ResponseSchema, RowId
from callcenter.notifications.models import MessageState, Purpose
from callcenter.notifications.services import masked_number


class NotificationQuery(PageQuery):
    work_order_id: RowId | None = Field(None, description="only messages about this work order")
    alarm_id: RowId | None = Field(None, description="only messages about this alarm")
    elder_id: RowId | None = Field(None, description="only messages about this elder")


class NotificationOut(ResponseSchema):
    id: int
    channel: str = Field(description="smpp, http, or off (not sent: SMS was off)")
    purpose: Purpose
    template: str = Field(description="the catalogue's key (callcenter/notifications/strings/sms.*.json)")
    language: str
    recipient: str = Field(description="the number, masked (138****5678)")
    body: str = Field(description="the text as sent (names masked)")
    elder_id: int | None
    alarm_id: int | None
    work_order_id: int | None
    state: MessageState = Field(description="queued → submitted → delivered, or failed / expired")
    attempts: int
    next_attempt_at: dt.datetime | None
    provider_message_id: str | None = Field(description="the SMSC's or provider's id")
    submitted_at: dt.datetime | None
    receipt_status: str | None = Field(description="the delivery receipt's status: DELIVRD, UNDELIV, EXPIRED, …")
    receipt_error: str | None
    receipt_at: dt.datetime | None
    last_error: str | None = Field(description="why the last attempt failed, or why the message failed")
    created_at: dt.datetime
    updated_at: dt.datetime

    @field_validator("recipient")
    @classmethod
    def _masked(cls, number: str) -> str:
        return masked_number(number)


class NotificationPage(Page):
    items: list[NotificationOut]
