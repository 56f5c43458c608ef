"""The locations domain (issue 15, seed 5.2): positions from devices (``POSITION_INTAKE``; MQTT: ``mqtt.py``; the
signed HTTP ingest: ``mqtt.PositionAnswers``), each judged against the elder's geofences (a crossing outside the
allowed hours raises a geofence alarm through the alarms domain), /api/v1/elders/{id}/positions and /geofences,
the map of the elder's file (``map.py``), and the positions' retention (``retention.py``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.alarms.wake import ALARM_WAKE
from callcenter.contract import Contribution, Plugin, PluginContext, on_device_message
from callcenter.locations import http
from callcenter.locations.intake import POSITION_INTAKE, PositionIntake
from callcenter.locations.map import ELDER_MAP, MAP_TILES, MapTiles
from callcenter.locations.models import Geofence, GeofenceState, Position
from callcenter.locations.mqtt import MqttPositions, PositionAnswers
from callcenter.locations.retention import PositionRetention
from callcenter.telephony.device_topics import POSITION


def load(ctx: PluginContext) -> Contribution:
    tz = ZoneInfo(ctx.settings.timezone)
    intake = ctx.provide(POSITION_INTAKE, PositionIntake(
        ctx.db, clock_skew=dt.timedelta(seconds=ctx.settings.alarm_clock_skew_seconds),
        merge_window=dt.timedelta(seconds=ctx.settings.alarm_merge_seconds), tz=tz))
    # A geofence or vital-sign alarm is offered to an agent at once (alarms.distribution).
    intake.on_alarm(ctx.require(ALARM_WAKE))
    # The tiles every map in the panel draws on (the elder's file here, the desk's alarm card).
    ctx.provide(MAP_TILES, MapTiles.of(ctx.settings))
    retention = PositionRetention(ctx.db, retention=dt.timedelta(days=ctx.settings.positions_retention_days))
    return Contribution(routes=http.routes, probes=[intake], mqtt=[MqttPositions(intake, tz).subscription()],
                        device_messages=[on_device_message(POSITION, PositionAnswers(intake))], sections=[ELDER_MAP],
                        jobs=[retention])


plugin = Plugin("locations", load, models=(Position, Geofence, GeofenceState))
