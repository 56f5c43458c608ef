"""The recordings domain: MixMonitor's spool compressed, stored (local or S3) and registered when a call ends and on
every scan; the library's routes."""

from __future__ import annotations

from aiohttp import web

from callcenter.asterisk.render import recordings_spool
from callcenter.calls.plugin import CALL_RECORDER
from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.recordings import http
from callcenter.recordings.backends import RECORDINGS, build_stores
from callcenter.recordings.models import Recording
from callcenter.recordings.pipeline import RecordingPipeline

# The pipeline: the disk monitor (health) watches its spool and wakes it when space returns.
RECORDING_PIPELINE = web.AppKey("recording_pipeline", RecordingPipeline)


def load(ctx: PluginContext) -> Contribution:
    settings = ctx.settings
    # New recordings go to CC_RECORDING_STORAGE's store; each row is read from the store of its own backend.
    stores = ctx.provide(RECORDINGS, build_stores(settings))
    pipeline = ctx.provide(RECORDING_PIPELINE, RecordingPipeline(
        ctx.db, stores.primary, ctx.runtime.host_path(recordings_spool(ctx.runtime)),
        settings.data_dir / "recordings-work", retention_days=settings.recording_retention_days,
        scan_seconds=settings.recording_scan_seconds))
    ctx.require(CALL_RECORDER).on_call_ended(pipeline.call_ended)
    return Contribution(routes=http.routes, jobs=[stores, pipeline])


plugin = Plugin("recordings", load, models=(Recording,))
