"""The alarms domain (issue 15): device and sensor alarms beside the voice SOS — the intake every device
transport calls (``ALARM_INTAKE``; MQTT: ``mqtt.py``), the alarms' state machine with their work orders, their
distribution to agents' panels (``distribution.py``, a job; the desk hands it the panels' fan-out) and
/api/v1/alarms."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.agents.state import AGENT_REGISTRY
from callcenter.alarms import http
from callcenter.alarms.distribution import ALARM_DISTRIBUTOR, AlarmDistributor
from callcenter.alarms.intake import ALARM_INTAKE, AlarmIntake
from callcenter.alarms.models import Alarm, AlarmMessage
from callcenter.alarms.mqtt import MqttAlarms
from callcenter.contract import Contribution, Plugin, PluginContext


def load(ctx: PluginContext) -> Contribution:
    settings = ctx.settings
    agents = ctx.require(AGENT_REGISTRY)
    distributor = ctx.provide(ALARM_DISTRIBUTOR, AlarmDistributor(
        ctx.db, agents, answer_target=dt.timedelta(seconds=settings.alarm_answer_target_seconds),
        offer_timeout=dt.timedelta(seconds=settings.alarm_offer_seconds), sweep_seconds=settings.alarm_sweep_seconds))
    intake = ctx.provide(ALARM_INTAKE, AlarmIntake(
        ctx.db, merge_window=dt.timedelta(seconds=settings.alarm_merge_seconds),
        clock_skew=dt.timedelta(seconds=settings.alarm_clock_skew_seconds), tz=ZoneInfo(settings.timezone)))
    # A stored alarm, or an agent who becomes free, is distributed at once (the sweep is only the safety net).
    intake.on_stored(distributor.wake)
    agents.on_change(distributor.wake)
    mqtt = MqttAlarms(intake, ZoneInfo(settings.timezone))
    return Contribution(routes=http.routes, probes=[intake, distributor], mqtt=[mqtt.subscription()],
                        jobs=[distributor])


plugin = Plugin("alarms", load, models=(Alarm, AlarmMessage))
