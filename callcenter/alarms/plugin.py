"""The alarms domain (issue 15): device and sensor alarms beside the voice SOS — the intake every device
transport calls (``ALARM_INTAKE``; MQTT: ``mqtt.py``; SCAIP over SIP MESSAGE, via the AMI: ``scaip.py``; the signed
HTTP ingest and other transports through ``answers.AlarmAnswers``, declared as the ``alarm`` kind's device-message
intake), the alarms' state machine with their work orders, their distribution to agents' panels
(``distribution.py``, a job; the desk hands it the panels' fan-out), /api/v1/alarms and the /alarms page."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from zoneinfo import ZoneInfo

from callcenter.agents.state import AGENT_REGISTRY
from callcenter.alarms import http
from callcenter.alarms.answers import AlarmAnswers
from callcenter.alarms.distribution import ALARM_DISTRIBUTOR, AlarmDistributor
from callcenter.alarms.intake import ALARM_INTAKE, AlarmIntake
from callcenter.alarms.models import Alarm, AlarmMessage, AlarmState, AlarmType
from callcenter.alarms.mqtt import MqttAlarms
from callcenter.alarms.scaip import ScaipAlarms
from callcenter.alarms.wake import ALARM_WAKE, WAKE_TOPIC, AlarmWakeSender, wake_on_message
from callcenter.contract import (
    PLATFORM_PROCESS,
    Contribution,
    Lifecycle,
    NavLink,
    Page,
    PageContent,
    PageRequest,
    Plugin,
    PluginContext,
    on_device_message,
    on_mqtt,
)
from callcenter.journal import Journal, JournalProbe
from callcenter.telephony.device_topics import ALARM


async def alarms_page(request: PageRequest) -> PageContent:
    """Every alarm (``static/alarms.js`` over ``/api/v1/alarms``) for those the API lets read them, and the
    answer-time figures for those it lets read those (supervisors, auditors, admins)."""
    may_read_figures = request.may(http.routes.roles_for("GET", "/alarms/answer-times"))
    return PageContent(values={"may_read_figures": may_read_figures,
                               "states": [state.value for state in AlarmState],
                               "types": [alarm_type.value for alarm_type in AlarmType]},
                       config={"mayReadFigures": may_read_figures})


ALARMS_PAGE = Page("/alarms", "alarms", Path(__file__).parent, content=alarms_page,
                   roles=http.routes.roles_for("GET", "/alarms"), nav=NavLink("common.nav.alarms", "nav-alarms"))


def load(ctx: PluginContext) -> Contribution:
    settings = ctx.settings
    # Device alarms the database cannot take while it is down or stalled wait here, on local disk, acknowledged.
    journal = Journal(settings.data_dir / "alarm-journal", name="alarms")
    agents = ctx.require(AGENT_REGISTRY)
    distributor = ctx.provide(ALARM_DISTRIBUTOR, AlarmDistributor(
        ctx.db, agents, answer_target=dt.timedelta(seconds=settings.alarm_answer_target_seconds),
        offer_timeout=dt.timedelta(seconds=settings.alarm_offer_seconds), sweep_seconds=settings.alarm_sweep_seconds))
    intake = ctx.provide(ALARM_INTAKE, AlarmIntake(
        ctx.db, merge_window=dt.timedelta(seconds=settings.alarm_merge_seconds),
        clock_skew=dt.timedelta(seconds=settings.alarm_clock_skew_seconds), tz=ZoneInfo(settings.timezone),
        journal=journal, deadline=settings.alarm_intake_seconds))
    # A stored alarm, or an agent who becomes free, is distributed at once (the sweep is only the safety net).
    intake.on_stored(distributor.wake)
    agents.on_change(distributor.wake)
    # Other domains' alarms (a vital sign, a geofence) wake it too: at once in this process, over MQTT from the
    # telemetry process, where the readings' alarms are stored when it runs.
    if ctx.process == PLATFORM_PROCESS:
        ctx.provide(ALARM_WAKE, distributor.wake)
    else:
        ctx.provide(ALARM_WAKE, AlarmWakeSender(ctx.mqtt).wake)
    mqtt = MqttAlarms(intake, ZoneInfo(settings.timezone))
    scaip = ScaipAlarms(intake, functools.partial(ctx.ami.send_action, single=True))
    return Contribution(
        routes=http.routes, pages=[ALARMS_PAGE], ami=[scaip.subscription()],
        mqtt=[mqtt.subscription(), on_mqtt(WAKE_TOPIC, wake_on_message(distributor.wake))],
        device_messages=[on_device_message(ALARM, AlarmAnswers(intake))],
        jobs=[Lifecycle(functools.partial(journal.start, intake.replay_entry), journal.stop), distributor],
        probes=[intake, distributor, JournalProbe(journal, "alarm_journal",
                                                  "empty: the database has taken every device alarm acknowledged")])


plugin = Plugin("alarms", load, models=(Alarm, AlarmMessage))
