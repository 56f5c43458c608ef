"""The plugin contract: what a domain package contributes to the platform, declared in one place.

Each domain package has a ``plugin.py`` with a module-level ``plugin = Plugin(name, models, load)``. The platform
(``callcenter.plugins`` lists them in order, ``callcenter.platform`` runs them) calls ``load(ctx)`` once per process
and wires what the returned ``Contribution`` holds: REST routes with their role policies, AMI event subscriptions,
FastAGI handlers by name, background jobs, health probes, and the web parts that are not REST routes (pages,
WebSockets). ``models`` are read without loading anything, so Alembic sees every table.

Plugins share services through typed keys: a plugin ``provide``s a service under a ``ServiceKey`` and a later
plugin ``require``s it. A provided service is also put on the web application under the same key, which is where
the domain's own HTTP handlers find it (``request.app[KEY]``). Dependencies point one way — telephony ← domains ←
platform — and a plugin may only require what a plugin listed before it provides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aiohttp import web

from callcenter.api.registry import ApiRoute
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from callcenter.db.base import Base
from callcenter.db.session import Database
from callcenter.telephony.ami import AmiClient, EventHandler
from callcenter.telephony.fastagi import Handler as AgiHandler

T = TypeVar("T")

# A typed name for a shared service. aiohttp's AppKey is exactly that, and using it lets a provided service sit on
# the web application under the very key its handlers read.
ServiceKey = web.AppKey


class Job(Protocol):
    """A background job: started after AMI and FastAGI are up, in plugin order; stopped in reverse order."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Lifecycle:
    """A ``Job`` made of two callables, for services whose methods are not called start/stop (``close``) or that
    only need one of them."""

    start_with: Callable[[], Awaitable[None]] | None = None
    stop_with: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        if self.start_with is not None:
            await self.start_with()

    async def stop(self) -> None:
        if self.stop_with is not None:
            await self.stop_with()


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One line of /healthz."""

    ok: bool
    detail: str
    # Failing impairs SOS handling itself: readiness answers 503.
    critical: bool = False
    # Figures for a monitoring system (free MB, a backlog's length, …); never personal data.
    facts: Mapping[str, object] = dataclasses.field(default_factory=dict)


class HealthProbe(Protocol):
    async def health_checks(self) -> dict[str, Check]:
        """Checks by name; fresh, and quick (the whole answer is bounded by health.services.PROBE_TIMEOUT)."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class AmiSubscription:
    events: frozenset[str]
    handler: EventHandler


def on_ami(events: Iterable[str], handler: EventHandler) -> AmiSubscription:
    return AmiSubscription(frozenset(events), handler)


@dataclasses.dataclass(frozen=True, slots=True)
class Contribution:
    """Everything one domain adds to the running platform."""

    routes: Iterable[ApiRoute] = ()  # REST routes under /api/v1; each carries its role policy (``ApiRoute.roles``)
    ami: Sequence[AmiSubscription] = ()
    agi: Mapping[str, AgiHandler] = dataclasses.field(default_factory=dict)  # name in the dialplan's agi:// URL
    jobs: Sequence[Job] = ()
    on_ami_login: Sequence[Callable[[], Awaitable[None]]] = ()  # after every AMI (re)login, Asterisk fully booted
    probes: Sequence[HealthProbe] = ()  # extra /healthz checks
    web: Sequence[Callable[[web.Application], None]] = ()  # pages and WebSockets: what is not a REST route


class MissingService(LookupError):
    pass


@dataclasses.dataclass(slots=True)
class PluginContext:
    """What a plugin's ``load`` is given: the process's shared parts, and the services earlier plugins provided."""

    settings: Settings
    db: Database
    ami: AmiClient
    runtime: AsteriskRuntime
    services: dict[web.AppKey[Any], Any] = dataclasses.field(default_factory=dict)
    # Services that stand in for what a plugin provides under the same key (a test's S3-backed store, say).
    replacements: dict[web.AppKey[Any], Any] = dataclasses.field(default_factory=dict)
    loading: str = ""  # the plugin whose load is running, named in errors

    def provide(self, key: web.AppKey[T], service: T) -> T:
        """Share ``service`` under ``key``; what is returned (the replacement, if one is set) is what to use."""
        if key in self.services:
            raise ValueError(f"plugin {self.loading}: {key.name} is already provided")
        chosen = self.replacements.get(key, service)
        self.services[key] = chosen
        return chosen  # type: ignore[no-any-return]

    def require(self, key: web.AppKey[T]) -> T:
        try:
            return self.services[key]  # type: ignore[no-any-return]
        except KeyError:
            raise MissingService(f"plugin {self.loading} needs {key.name}: list the plugin that provides it "
                                 "before it in callcenter.plugins.PLUGINS") from None


@dataclasses.dataclass(frozen=True, slots=True)
class Plugin:
    """A domain's declaration: its name, its tables (for Alembic, without loading) and its ``load``."""

    name: str
    load: Callable[[PluginContext], Contribution]
    models: tuple[type[Base], ...] = ()
