"""The users domain: accounts, log-in (with its throttling) and the API's own user routes."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.users import http
from callcenter.users.login_guard import LOGIN_GUARD, LoginGuard
from callcenter.users.models import User


def load(ctx: PluginContext) -> Contribution:
    ctx.provide(LOGIN_GUARD, LoginGuard(attempts_per_minute=ctx.settings.login_attempts_per_minute,
                                        hash_concurrency=ctx.settings.login_hash_concurrency))
    return Contribution(routes=http.routes)


plugin = Plugin("users", load, models=(User,))
