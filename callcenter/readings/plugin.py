"""The readings domain (issue 15, seed 5.4/5.5): health readings from devices (``READING_INTAKE``; MQTT:
``mqtt.py``; the signed HTTP ingest: ``mqtt.ReadingAnswers``) and by hand, thresholds with an elder's own
overrides, the rules (a vital-sign alarm, a trend's follow-up order for the community doctor), the monthly
partitions and retention (``partitions.py``), /api/v1/elders/{id}/readings and /thresholds, and the elder's
health on the elder's file (the ``health_trends`` section of the elders page)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from callcenter.alarms.wake import ALARM_WAKE
from callcenter.api.context import CENTRE_TIMEZONE
from callcenter.contract import (
    Contribution,
    PageContent,
    PageRequest,
    PageSection,
    Plugin,
    PluginContext,
    on_device_message,
)
from callcenter.readings import http
from callcenter.readings.intake import READING_INTAKE, ReadingIntake
from callcenter.readings.models import Reading, ReadingMessage, ReadingTrend, ReadingType, ThresholdOverride
from callcenter.readings.mqtt import MqttReadings, ReadingAnswers
from callcenter.readings.partitions import PartitionJob
from callcenter.readings.schemas import GlucoseContext, TemperatureSite
from callcenter.readings.thresholds import MEASURES
from callcenter.telephony.device_topics import READING


async def health_trends(request: PageRequest) -> PageContent:
    """The elder's readings on the elder's file (``static/health_trends.js`` over /api/v1/elders/{id}/readings and
    /thresholds): the latest of each type, a trend chart per type with the elder's limits, hand entry and the
    elder's own limits for the roles the API lets do them; the times in the centre's time zone."""
    may_enter = request.may(http.routes.roles_for("POST", "/elders/{id}/readings"))
    may_set_limits = request.may(http.routes.roles_for("PUT", "/elders/{id}/thresholds/{type}"))
    return PageContent(values={"may_enter": may_enter, "may_set_limits": may_set_limits,
                               "types": [reading_type.value for reading_type in ReadingType],
                               "contexts": [context.value for context in GlucoseContext],
                               "sites": [site.value for site in TemperatureSite]},
                       config={"mayEnter": may_enter, "maySetLimits": may_set_limits,
                               "timezone": request.service(CENTRE_TIMEZONE),
                               # In the catalogue's order (the config's objects reach the script with sorted keys).
                               "types": [reading_type.value for reading_type in ReadingType],
                               "measures": {reading_type.value: list(measures)
                                            for reading_type, measures in MEASURES.items()}})


HEALTH_TRENDS = PageSection("elders", "health_trends", Path(__file__).parent, content=health_trends,
                            roles=http.routes.roles_for("GET", "/elders/{id}/readings"), css=True,
                            libraries=("uPlot.iife.min.js", "uPlot.min.css"))


def load(ctx: PluginContext) -> Contribution:
    retention = dt.timedelta(days=ctx.settings.readings_retention_days)
    tz = ZoneInfo(ctx.settings.timezone)
    intake = ctx.provide(READING_INTAKE, ReadingIntake(
        ctx.db, clock_skew=dt.timedelta(seconds=ctx.settings.alarm_clock_skew_seconds), retention=retention,
        merge_window=dt.timedelta(seconds=ctx.settings.alarm_merge_seconds), tz=tz))
    mqtt = MqttReadings(intake, tz)
    partitions = PartitionJob(ctx.db, retention=retention, months_ahead=ctx.settings.readings_partitions_ahead)
    # A geofence or vital-sign alarm is offered to an agent at once (alarms.distribution).
    intake.on_alarm(ctx.require(ALARM_WAKE))
    return Contribution(routes=http.routes, probes=[intake], mqtt=[mqtt.subscription()], jobs=[partitions],
                        device_messages=[on_device_message(READING, ReadingAnswers(intake))],
                        sections=[HEALTH_TRENDS])


plugin = Plugin("readings", load, models=(Reading, ReadingMessage, ThresholdOverride, ReadingTrend))
