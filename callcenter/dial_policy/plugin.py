"""The outbound dialling policy (issue 14): which numbers may be dialled through the trunk, the supervisors' list
of allowed numbers, and the audit of every outbound dial (used by conferences, follow-up calls and SOS
call-backs)."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.dial_policy import http
from callcenter.dial_policy.models import AllowedNumber


def load(_ctx: PluginContext) -> Contribution:
    return Contribution(routes=http.routes)


plugin = Plugin("dial_policy", load, models=(AllowedNumber,))
