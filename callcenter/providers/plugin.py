"""The providers domain (seed 6.3): the registry of service providers, their staff and API keys, signed reports."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.providers import http
from callcenter.providers.models import (
    ProviderApiKey,
    ProviderApiNonce,
    ProviderReport,
    ProviderStaff,
    ServiceProvider,
)


def load(_ctx: PluginContext) -> Contribution:
    return Contribution(routes=http.routes)


plugin = Plugin("providers", load,
                models=(ServiceProvider, ProviderStaff, ProviderApiKey, ProviderApiNonce, ProviderReport))
