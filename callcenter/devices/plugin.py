"""The devices domain: one-touch pendants and phones, provisioned to Asterisk as they are created, with an account
on the platform-managed MQTT broker, and their heartbeats (last heartbeat, battery) over MQTT."""

from __future__ import annotations

from callcenter.asterisk.provisioning import AsteriskProvisioner
from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.devices import http
from callcenter.devices.heartbeats import Heartbeats
from callcenter.devices.models import Device
from callcenter.devices.services import MQTT_ACCOUNTS, PROVISIONER
from callcenter.mosquitto.accounts import DeviceMqttAccounts


def load(ctx: PluginContext) -> Contribution:
    # New devices and phones (users.http creates phones too) are applied to Asterisk at once, or on its next login.
    ctx.provide(PROVISIONER, AsteriskProvisioner(ctx.settings, ctx.db, ctx.ami))
    # A device's MQTT account on the platform-managed broker (none when the broker is another's, or MQTT is off).
    ctx.provide(MQTT_ACCOUNTS, DeviceMqttAccounts(ctx.broker.broker))
    heartbeats = Heartbeats(ctx.db)
    return Contribution(routes=http.routes, mqtt=[heartbeats.subscription()], probes=[heartbeats])


plugin = Plugin("devices", load, models=(Device,))
