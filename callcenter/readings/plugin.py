"""The readings domain (issue 15, seed 5.4/5.5): health readings from devices (``READING_INTAKE``; MQTT:
``mqtt.py``; the signed HTTP ingest: ``mqtt.ReadingAnswers``) and by hand, thresholds with an elder's own
overrides, the rules (a vital-sign alarm, a trend's follow-up order for the community doctor), the monthly
partitions and retention (``partitions.py``), and /api/v1/elders/{id}/readings and /thresholds."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.alarms.distribution import ALARM_DISTRIBUTOR
from callcenter.contract import Contribution, Plugin, PluginContext, on_device_message
from callcenter.readings import http
from callcenter.readings.intake import READING_INTAKE, ReadingIntake
from callcenter.readings.models import Reading, ReadingMessage, ReadingTrend, ThresholdOverride
from callcenter.readings.mqtt import MqttReadings, ReadingAnswers
from callcenter.readings.partitions import PartitionJob
from callcenter.telephony.device_topics import READING


def load(ctx: PluginContext) -> Contribution:
    retention = dt.timedelta(days=ctx.settings.readings_retention_days)
    tz = ZoneInfo(ctx.settings.timezone)
    intake = ctx.provide(READING_INTAKE, ReadingIntake(
        ctx.db, clock_skew=dt.timedelta(seconds=ctx.settings.alarm_clock_skew_seconds), retention=retention,
        merge_window=dt.timedelta(seconds=ctx.settings.alarm_merge_seconds), tz=tz))
    mqtt = MqttReadings(intake, tz)
    partitions = PartitionJob(ctx.db, retention=retention, months_ahead=ctx.settings.readings_partitions_ahead)
    # A geofence or vital-sign alarm is offered to an agent at once (alarms.distribution).
    intake.on_alarm(ctx.require(ALARM_DISTRIBUTOR).wake)
    return Contribution(routes=http.routes, probes=[intake], mqtt=[mqtt.subscription()], jobs=[partitions],
                        device_messages=[on_device_message(READING, ReadingAnswers(intake))])


plugin = Plugin("readings", load, models=(Reading, ReadingMessage, ThresholdOverride, ReadingTrend))
