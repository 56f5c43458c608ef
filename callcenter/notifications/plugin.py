"""The notifications domain (issue 16): the SMS service other domains send through (``SMS``), its channel per
CC_SMS_CHANNEL (SMPP 3.4 or an HTTP provider; none when off), the sender job, the ``sms`` line of /healthz and
/api/v1/notifications."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.config import Settings
from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.notifications import http
from callcenter.notifications.http_gateway import HttpGatewayChannel
from callcenter.notifications.models import SmsMessage
from callcenter.notifications.services import SMS, NotificationService, Policy
from callcenter.notifications.smpp import SmppChannel
from callcenter.notifications.templates import Templates


def build_service(ctx: PluginContext) -> NotificationService:
    settings: Settings = ctx.settings
    policy = Policy(max_attempts=settings.sms_max_attempts, retry=dt.timedelta(seconds=settings.sms_retry_seconds),
                    receipt_wait=dt.timedelta(hours=settings.sms_receipt_hours),
                    round_seconds=float(settings.sms_round_seconds))
    service = NotificationService(ctx.db, Templates.load(), channel=settings.sms_channel,
                                  signature=settings.sms_signature, policy=policy)
    if settings.sms_channel == "smpp":
        service.channels.add(SmppChannel(
            host=settings.smpp_host, port=settings.smpp_port, system_id=settings.smpp_system_id,
            password=settings.smpp_password or "", source_addr=settings.smpp_source_addr,
            timeout=float(settings.smpp_timeout_seconds), tz=ZoneInfo(settings.timezone),
            on_accepted=service.accepted, on_receipt=service.receipt))
    elif settings.sms_channel == "http":
        service.channels.add(HttpGatewayChannel(
            url=settings.sms_http_url, key=settings.sms_http_key, secret=settings.sms_http_secret or "",
            signature=settings.sms_signature, timeout=float(settings.sms_http_timeout_seconds),
            templates=settings.sms_template_codes))
    return service


def load(ctx: PluginContext) -> Contribution:
    service = ctx.provide(SMS, build_service(ctx))
    return Contribution(routes=http.routes, jobs=[service], probes=[service])


plugin = Plugin("notifications", load, models=(SmsMessage,))
