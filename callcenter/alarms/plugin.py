"""The alarms domain (issue 15): device and sensor alarms beside the voice SOS — the intake every device
transport calls (``ALARM_INTAKE``; MQTT: ``mqtt.py``; SCAIP over SIP MESSAGE, via the AMI: ``scaip.py``), the
alarms' state machine with their work orders, and /api/v1/alarms."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from callcenter.alarms import http
from callcenter.alarms.intake import ALARM_INTAKE, AlarmIntake
from callcenter.alarms.models import Alarm, AlarmMessage
from callcenter.alarms.mqtt import MqttAlarms
from callcenter.alarms.scaip import ScaipAlarms
from callcenter.contract import Contribution, Plugin, PluginContext


def load(ctx: PluginContext) -> Contribution:
    intake = ctx.provide(ALARM_INTAKE, AlarmIntake(
        ctx.db, merge_window=dt.timedelta(seconds=ctx.settings.alarm_merge_seconds),
        clock_skew=dt.timedelta(seconds=ctx.settings.alarm_clock_skew_seconds), tz=ZoneInfo(ctx.settings.timezone)))
    mqtt = MqttAlarms(intake, ZoneInfo(ctx.settings.timezone))
    scaip = ScaipAlarms(intake, functools.partial(ctx.ami.send_action, single=True))
    return Contribution(routes=http.routes, probes=[intake], mqtt=[mqtt.subscription()], ami=[scaip.subscription()])


plugin = Plugin("alarms", load, models=(Alarm, AlarmMessage))
