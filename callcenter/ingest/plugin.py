"""The ingest domain (issue 15): signed HTTP ingest of device messages for gateways and vendor clouds — ingest keys
scoped to devices (/api/v1/ingest-keys, admins) and POST /api/v1/device-messages, which hands each message to the
intake its kind's domain declared (``Contribution.device_messages``, gathered as ``contract.DEVICE_INTAKES``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.ingest import http
from callcenter.ingest.models import IngestKey, IngestKeyDevice, IngestNonce
from callcenter.ingest.services import DEVICE_INGEST, DeviceIngest


def load(ctx: PluginContext) -> Contribution:
    ingest = ctx.provide(DEVICE_INGEST, DeviceIngest(
        max_skew=ctx.settings.ingest_max_skew, max_body_bytes=ctx.settings.ingest_max_body_bytes,
        tz=ZoneInfo(ctx.settings.timezone)))
    return Contribution(routes=http.routes, probes=[ingest])


plugin = Plugin("ingest", load, models=(IngestKey, IngestKeyDevice, IngestNonce))
