"""The health domain's watched parts: free space of the spool, the recordings store and the data dir, alarmed
before a disk is full; and the status page. (/healthz itself is served by the platform, which owns the AMI and
FastAGI it reports on; the status page reads the same report.)"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from callcenter.contract import Contribution, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.health.disk import DiskMonitor
from callcenter.health.http import HEALTH_KEY
from callcenter.recordings.plugin import RECORDING_PIPELINE

# The wallboard shows the disk alarms.
DISK_MONITOR = web.AppKey("disk_monitor", DiskMonitor)


async def status_page(request: PageRequest) -> PageContent:
    """The platform's state for a person: each check, up or down, without logging in (it names no one)."""
    return PageContent(values={"report": await request.service(HEALTH_KEY).check()})


STATUS_PAGE = Page("/status", "status", Path(__file__).parent, content=status_page, accounts=None)


def load(ctx: PluginContext) -> Contribution:
    recordings = ctx.require(RECORDING_PIPELINE)
    disk = ctx.provide(DISK_MONITOR, DiskMonitor.for_platform(ctx.settings, recordings.spool))
    disk.on_change(recordings.scan_soon)  # space may be back: collect what waited without delay
    return Contribution(jobs=[disk], probes=[disk], pages=[STATUS_PAGE])


plugin = Plugin("health", load)
