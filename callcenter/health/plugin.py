"""The health domain's watched parts: free space of the spool, the recordings store and the data dir, alarmed
before a disk is full. (/healthz itself is served by the platform, which owns the AMI and FastAGI it reports on.)"""

from __future__ import annotations

from aiohttp import web

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.health.disk import DiskMonitor
from callcenter.recordings.plugin import RECORDING_PIPELINE

# The wallboard shows the disk alarms.
DISK_MONITOR = web.AppKey("disk_monitor", DiskMonitor)


def load(ctx: PluginContext) -> Contribution:
    recordings = ctx.require(RECORDING_PIPELINE)
    disk = ctx.provide(DISK_MONITOR, DiskMonitor.for_platform(ctx.settings, recordings.spool))
    disk.on_change(recordings.scan_soon)  # space may be back: collect what waited without delay
    return Contribution(jobs=[disk], probes=[disk])


plugin = Plugin("health", load)
