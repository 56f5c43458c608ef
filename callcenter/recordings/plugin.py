"""The recordings domain: MixMonitor's spool compressed, stored (local or S3) and registered when a call ends and on
every scan; the library's routes and its page."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from callcenter.asterisk.render import recordings_spool
from callcenter.calls.plugin import CALL_RECORDER
from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.recordings import http
from callcenter.recordings.access import may_download
from callcenter.recordings.backends import RECORDINGS, build_stores
from callcenter.recordings.models import Recording
from callcenter.recordings.pipeline import RecordingPipeline

# The pipeline: the disk monitor (health) watches its spool and wakes it when space returns.
RECORDING_PIPELINE = web.AppKey("recording_pipeline", RecordingPipeline)


async def library_page(request: PageRequest) -> PageContent:
    """The recordings library: supervisors and auditors (and admins) search and replay with a reason."""
    assert request.role is not None
    return PageContent(values={
        "may_download": may_download(request.role),
        "may_audit": request.may(http.routes.roles_for("GET", "/recordings/{id}/accesses"))})


LIBRARY_PAGE = Page("/library", "library", Path(__file__).parent, content=library_page,
                    roles=frozenset(http.LIBRARY_USERS), nav=NavLink("common.nav.library", "library-link",
                                                                     everywhere=False))


def load(ctx: PluginContext) -> Contribution:
    settings = ctx.settings
    # New recordings go to CC_RECORDING_STORAGE's store; each row is read from the store of its own backend.
    stores = ctx.provide(RECORDINGS, build_stores(settings))
    pipeline = ctx.provide(RECORDING_PIPELINE, RecordingPipeline(
        ctx.db, stores.primary, ctx.runtime.host_path(recordings_spool(ctx.runtime)),
        settings.data_dir / "recordings-work", retention_days=settings.recording_retention_days,
        scan_seconds=settings.recording_scan_seconds))
    ctx.require(CALL_RECORDER).on_call_ended(pipeline.call_ended)
    return Contribution(routes=http.routes, jobs=[stores, pipeline], pages=[LIBRARY_PAGE])


plugin = Plugin("recordings", load, models=(Recording,))
