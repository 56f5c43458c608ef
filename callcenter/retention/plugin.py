"""The retention domain (seed 5.10): a run shortly after start, then daily; legal holds; audio deleted from each
row's own store."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.recordings.backends import RECORDINGS
from callcenter.retention import http
from callcenter.retention.engine import RetentionEngine, RetentionPolicy
from callcenter.retention.models import RetentionLogEntry
from callcenter.retention.service import RetentionService


def load(ctx: PluginContext) -> Contribution:
    engine = RetentionEngine(ctx.db, ctx.require(RECORDINGS), RetentionPolicy.from_settings(ctx.settings))
    return Contribution(routes=http.routes, jobs=[RetentionService(engine)])


plugin = Plugin("retention", load, models=(RetentionLogEntry,))
