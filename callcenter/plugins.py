"""The platform's plugins, in load order: a plugin may require only services that a plugin before it provides.

To add a domain: write its ``plugin.py`` (``callcenter.contract``) and list it here. Nothing else is wired by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import MetaData

from callcenter.agents.plugin import plugin as agents
from callcenter.alarms.plugin import plugin as alarms
from callcenter.audit.plugin import plugin as audit
from callcenter.calls.plugin import plugin as calls
from callcenter.care_calls.plugin import plugin as care_calls
from callcenter.cascades.plugin import plugin as cascades
from callcenter.conferences.plugin import plugin as conferences
from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.db.base import Base
from callcenter.desk.plugin import plugin as desk
from callcenter.devices.plugin import plugin as devices
from callcenter.dial_policy.plugin import plugin as dial_policy
from callcenter.elders.plugin import plugin as elders
from callcenter.follow_up_calls.plugin import plugin as follow_up_calls
from callcenter.health.plugin import plugin as health
from callcenter.health_records.plugin import plugin as health_records
from callcenter.ingest.plugin import plugin as ingest
from callcenter.ivr.plugin import plugin as ivr
from callcenter.locations.plugin import plugin as locations
from callcenter.notifications.plugin import plugin as notifications
from callcenter.orders.plugin import plugin as orders
from callcenter.outbound.plugin import plugin as outbound
from callcenter.providers.plugin import plugin as providers
from callcenter.readings.plugin import plugin as readings
from callcenter.recordings.plugin import plugin as recordings
from callcenter.reminders.plugin import plugin as reminders
from callcenter.retention.plugin import plugin as retention
from callcenter.sip_security.plugin import plugin as sip_security
from callcenter.spy.plugin import plugin as spy
from callcenter.supervision_cases.plugin import plugin as supervision_cases
from callcenter.users.plugin import plugin as users
from callcenter.volunteers.plugin import plugin as volunteers
from callcenter.wallboard.plugin import plugin as wallboard

PLUGINS: tuple[Plugin, ...] = (
    users, audit, elders, dial_policy, devices, agents, calls, recordings, health, retention, orders,
    alarms, notifications, locations, readings, health_records, ingest, supervision_cases, providers, volunteers,
    ivr, conferences, spy, wallboard, follow_up_calls, outbound, care_calls, cascades, reminders, desk,
    sip_security,
)


def metadata() -> MetaData:
    """Every plugin's tables (Alembic and tests use this); their modules are imported by the imports above."""
    declared = {model.__table__.name for plugin in PLUGINS for model in plugin.models}
    missing = set(Base.metadata.tables) - declared
    if missing:  # a model some plugin imports but none declares would be created yet owned by nobody
        raise RuntimeError(f"tables not declared by any plugin's models: {sorted(missing)}")
    return Base.metadata


def load_plugins(context: PluginContext, plugins: Sequence[Plugin] = PLUGINS) -> list[tuple[str, Contribution]]:
    """Each plugin's ``load`` in order, with ``context`` (which collects the services they provide)."""
    contributions = []
    for plugin in plugins:
        context.loading = plugin.name
        contributions.append((plugin.name, plugin.load(context)))
    context.loading = ""
    return contributions
