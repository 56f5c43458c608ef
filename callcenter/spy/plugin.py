"""The spy domain: supervisors listen, whisper or barge on a live call (ChanSpy; the supervisor's phone rung)."""

from __future__ import annotations

from callcenter.contract import Contribution, Lifecycle, Plugin, PluginContext, on_ami
from callcenter.spy import http
from callcenter.spy.services import EVENTS, SpyService


def load(ctx: PluginContext) -> Contribution:
    spy = ctx.provide(http.SPY, SpyService(ctx.db, ctx.ami, ctx.settings))
    return Contribution(routes=http.routes, ami=[on_ami(EVENTS, spy.handle)], jobs=[Lifecycle(stop_with=spy.close)])


plugin = Plugin("spy", load)
