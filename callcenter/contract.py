"""The plugin contract: what a domain package contributes to the platform, declared in one place.

Each domain package has a ``plugin.py`` with a module-level ``plugin = Plugin(name, models, load)``. The platform
(``callcenter.plugins`` lists them in order, ``callcenter.platform`` runs them) calls ``load(ctx)`` once per process
and wires what the returned ``Contribution`` holds: REST routes with their role policies, AMI event subscriptions,
FastAGI handlers by name, MQTT subscriptions (a handler per topic filter), background jobs, health probes, the pages
it shows (``Page``: the web layer renders any declared page, from the domain's own ``templates/``, ``static/`` and
``strings/``) and the web parts that are neither (WebSockets). ``models`` are read without loading anything, so
Alembic sees every table.

Plugins share services through typed keys: a plugin ``provide``s a service under a ``ServiceKey`` and a later
plugin ``require``s it. A provided service is also put on the web application under the same key, which is where
the domain's own HTTP handlers find it (``request.app[KEY]``). Dependencies point one way — telephony ← domains ←
platform — and a plugin may only require what a plugin listed before it provides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web

from callcenter.api.registry import ApiRoute
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from callcenter.db.base import Base
from callcenter.db.session import Database
from callcenter.mosquitto.choice import BrokerChoice
from callcenter.telephony.ami import AmiClient, EventHandler
from callcenter.telephony.device_topics import DEVICE_MESSAGES, HEARTBEAT, DeviceAnswer
from callcenter.telephony.fastagi import Handler as AgiHandler
from callcenter.telephony.mqtt import (
    MqttBatchHandler,
    MqttClient,
    MqttHandler,
    RefusalHandler,
    check_topic_filter,
)
from callcenter.users.models import Role

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


# The processes a plugin is loaded in. The platform's own runs everything (calls, alarms, the panel); with
# CC_TELEMETRY_PROCESS on, the telemetry process (``callcenter.telemetry``) takes the device telemetry that may come
# in thousands a second, on a CPU priority below the red button's, so that it never delays an SOS.
PLATFORM_PROCESS = "platform"
TELEMETRY_PROCESS = "telemetry"


@dataclasses.dataclass(frozen=True, slots=True)
class MqttSubscription:
    topic_filter: str
    handler: MqttHandler | MqttBatchHandler
    on_refused: RefusalHandler | None = None
    max_batch: int | None = None  # a batch handler's largest batch; None: ``handler`` takes one message
    # Where it runs: the platform's process, or (TELEMETRY_PROCESS) the telemetry process when there is one.
    process: str = PLATFORM_PROCESS


def on_mqtt(topic_filter: str, handler: MqttHandler, *, on_refused: RefusalHandler | None = None) -> MqttSubscription:
    """Messages on ``topic_filter`` (``telephony.device_topics.device_filter("alarm")``: every device's alarms) go to
    ``handler(message, publish)`` in arrival order, one at a time; ``publish(topic, payload)`` answers at QoS 1 and
    returns once the broker has the answer. A message the transport refuses unread (over
    CC_MQTT_MAX_PAYLOAD_BYTES) goes to ``on_refused(refusal, publish)`` instead, if given. One handler per filter
    across all plugins; filters should not overlap (a broker sends an overlapping message once per filter)."""
    return MqttSubscription(check_topic_filter(topic_filter), handler, on_refused)


def on_mqtt_batch(topic_filter: str, handler: MqttBatchHandler, *, max_batch: int,
                  on_refused: RefusalHandler | None = None, telemetry: bool = False) -> MqttSubscription:
    """As ``on_mqtt``, for an intake that takes many messages in one transaction: ``handler(messages, publish)``
    gets, in arrival order, everything that arrived on ``topic_filter`` while it worked on the last batch (at most
    ``max_batch``; one when messages come slower than it works). ``telemetry``: it runs in the telemetry process
    when there is one (a shared subscription there), else in the platform's; its handler must then need nothing
    but the database and ``publish`` (a service it wakes in the platform's process is reached over MQTT)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, not {max_batch}")
    return MqttSubscription(check_topic_filter(topic_filter), handler, on_refused, max_batch,
                            TELEMETRY_PROCESS if telemetry else PLATFORM_PROCESS)


# A domain's intake of one kind of device message, for transports other than its own MQTT subscription (the signed
# HTTP ingest): ``handler(device_id, raw, channel)`` takes the device's message bytes exactly as a device sends
# them on MQTT, for a device the transport has authorised, and answers once the message is committed (``stored``)
# or refused for good (``rejected``). ``channel`` names the transport ("http"). A database failure propagates:
# nothing was answered, the sender sends again.
DeviceMessageHandler = Callable[[int, bytes, str], Awaitable[DeviceAnswer]]


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceMessageIntake:
    kind: str
    handler: DeviceMessageHandler


def on_device_message(kind: str, handler: DeviceMessageHandler) -> DeviceMessageIntake:
    """Declare ``handler`` as the intake of device messages of ``kind`` (``alarm``, ``position``, ``reading``:
    telephony.device_topics.DEVICE_MESSAGES, heartbeats aside as they are not acknowledged), for
    ``Contribution(device_messages=[...])``. One domain per kind."""
    if kind not in DEVICE_MESSAGES or kind == HEARTBEAT:
        raise ValueError(f"{kind!r} is not an acknowledged device message")
    return DeviceMessageIntake(kind, handler)


class DeviceIntakes:
    """Every plugin's device-message intakes by kind (``platform.assemble`` gathers them after loading, under
    ``DEVICE_INTAKES``): what a transport that carries several kinds (the signed HTTP ingest) dispatches to."""

    def __init__(self, intakes: Iterable[DeviceMessageIntake] = ()) -> None:
        self._handlers: dict[str, DeviceMessageHandler] = {}
        for intake in intakes:
            self.add(intake)

    def add(self, intake: DeviceMessageIntake) -> None:
        if intake.kind in self._handlers:
            raise ValueError(f"device messages of kind {intake.kind!r} already have an intake")
        self._handlers[intake.kind] = intake.handler

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in DEVICE_MESSAGES if kind in self._handlers)

    def handler(self, kind: str) -> DeviceMessageHandler | None:
        return self._handlers.get(kind)


DEVICE_INTAKES = web.AppKey("device_intakes", DeviceIntakes)


# Whose pages a page is: the centre's staff, or the providers' portal accounts (seed 6.3). A signed-in account
# opening a page that is not for its kind of account is sent to its own home page.
CENTRE_STAFF = frozenset({Role.ADMIN, Role.AGENT, Role.SUPERVISOR, Role.AUDITOR})
PORTAL_ACCOUNTS = frozenset({Role.PROVIDER})


@dataclasses.dataclass(frozen=True, slots=True)
class PageRequest:
    """What a page's ``content`` sees of the request it answers: read-only."""

    role: Role | None  # None: a public page's visitor, who need not be signed in
    username: str | None
    today: dt.date  # on the centre's calendar (CC_TIMEZONE)
    services: Mapping[web.AppKey[Any], Any]  # the application's shared services, by their keys

    def may(self, roles: Collection[Role]) -> bool:
        """As ``Principal.may`` decides for the API: one of ``roles``, or an admin (always)."""
        return self.role is Role.ADMIN or (self.role is not None and self.role in roles)

    def service(self, key: web.AppKey[T]) -> T:
        return self.services[key]  # type: ignore[no-any-return]


@dataclasses.dataclass(frozen=True, slots=True)
class PageContent:
    """What a page shows this visitor: values for its template, and ``config`` for its script (merged into the
    JSON config block after who is signed in, the bearer token and the strings)."""

    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)


async def no_content(_request: PageRequest) -> PageContent:
    return PageContent()


@dataclasses.dataclass(frozen=True, slots=True)
class NavLink:
    """A page's link in the signed-in nav, shown to exactly those who may open the page."""

    label: str  # a ``common`` catalogue key
    element_id: str  # the link's HTML id (the browser tests click it)
    everywhere: bool = True  # on every signed-in page; False: only on the home page (the desk)


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """A page a domain shows, declared beside its files: ``directory/templates/<name>.html``, the script
    ``directory/static/<name>.js`` (every page behind the log-in has one), ``directory/static/<name>.css`` if
    ``css``, and the strings ``directory/strings/<name>.<language>.json`` (namespace ``<name>``). The web layer
    renders it; the domain decides who may open it and what it shows.

    Who: ``accounts`` are whose page it is — anyone else signed in is sent to their own home page, and anonymous
    visitors to the log-in; None makes it public (no log-in, no script, no token). Of those accounts, ``roles``
    (admins always, as in the API; None: all of them) may use it; the others get the page answered 403, which
    carries neither its script nor the token. Point ``roles`` at the API's own policy
    (``routes.roles_for(method, path)`` of the operation the page's script needs), never a copy of it."""

    path: str
    name: str
    directory: Path  # the domain package's directory
    content: Callable[[PageRequest], Awaitable[PageContent]] = no_content
    accounts: frozenset[Role] | None = CENTRE_STAFF
    roles: frozenset[Role] | None = None
    css: bool = False
    nav: NavLink | None = None
    home: bool = False  # where its accounts land after log-in
    # Shared files its script needs (``web/static`` and its ``vendor/``: "leaflet.js", "map.js", …), by name: the
    # stylesheets in the head, the scripts after common.js and before its own.
    libraries: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return self.accounts is None

    def is_for(self, role: Role) -> bool:
        """Whether ``role``'s accounts open this page (rather than being sent to their home)."""
        return self.accounts is None or role in self.accounts

    def allows(self, role: Role) -> bool:
        """Whether ``role`` may use the page (an account it is for, and one of ``roles`` or an admin)."""
        return self.is_for(role) and (self.roles is None or role is Role.ADMIN or role in self.roles)

    def files(self) -> tuple[str, ...]:
        """Its files under ``static/``, by name."""
        if self.public:
            return ()
        return (f"{self.name}.js", f"{self.name}.css") if self.css else (f"{self.name}.js",)


@dataclasses.dataclass(frozen=True, slots=True)
class PageSection:
    """A part one domain adds to another domain's page — the elder's file shows the locations domain's map and the
    readings domain's trend charts, while the elders domain knows neither. Declared beside its files like a page:
    the partial ``directory/templates/<name>.html`` (included at the host page's ``sections`` slot, with its
    content's values as ``section.values``), the script ``directory/static/<name>.js`` (loaded after the host page's),
    ``directory/static/<name>.css`` if ``css``, and the strings ``directory/strings/<name>.<language>.json``
    (namespace ``<name>``, added to the host page's). Its content's config reaches the script as
    ``config.sections[<name>]``. The host page's script announces what it shows with DOM events (the elders page:
    ``cc:elder-opened`` / ``cc:elder-closed``); a section listens and talks to the REST API itself.

    Who: those who may use the host page and, of them, ``roles`` (admins always; None: all of them). Point
    ``roles`` at the API's policy of the operation the section's script needs, as a page does. ``libraries``: the
    shared files it needs (``web/static`` and its ``vendor/``, by name: ``uPlot.iife.min.js``, ``map.js``), linked
    once with the host page's own, before every script and stylesheet of the page and its sections."""

    page: str  # the host page's name
    name: str
    directory: Path  # the contributing domain package's directory
    content: Callable[[PageRequest], Awaitable[PageContent]] = no_content
    roles: frozenset[Role] | None = None
    css: bool = False
    libraries: tuple[str, ...] = ()  # shared files its script needs, as a page's (loaded once per page)

    @property
    def path(self) -> str:
        """Where it shows, for messages (a section has no address of its own)."""
        return f"{self.page}#{self.name}"

    @property
    def public(self) -> bool:
        return False  # a section of a public page would hand a script to nobody signed in

    def allows(self, role: Role) -> bool:
        return self.roles is None or role is Role.ADMIN or role in self.roles

    def files(self) -> tuple[str, ...]:
        """Its files under ``static/``, by name."""
        return (f"{self.name}.js", f"{self.name}.css") if self.css else (f"{self.name}.js",)


@dataclasses.dataclass(frozen=True, slots=True)
class Contribution:
    """Everything one domain adds to the running platform."""

    routes: Iterable[ApiRoute] = ()  # REST routes under /api/v1; each carries its role policy (``ApiRoute.roles``)
    ami: Sequence[AmiSubscription] = ()
    mqtt: Sequence[MqttSubscription] = ()  # the devices' topics (docs/device-protocol.md); works with MQTT off too
    agi: Mapping[str, AgiHandler] = dataclasses.field(default_factory=dict)  # name in the dialplan's agi:// URL
    jobs: Sequence[Job] = ()
    on_ami_login: Sequence[Callable[[], Awaitable[None]]] = ()  # after every AMI (re)login, Asterisk fully booted
    probes: Sequence[HealthProbe] = ()  # extra /healthz checks
    pages: Sequence[Page] = ()  # the screens it shows (the web layer renders them)
    sections: Sequence[PageSection] = ()  # the parts it adds to other domains' pages (the elder's file, …)
    web: Sequence[Callable[[web.Application], None]] = ()  # WebSockets: what is neither a REST route nor a page
    # Its intakes of device messages by kind, for transports that carry several kinds (DEVICE_INTAKES)
    device_messages: Sequence[DeviceMessageIntake] = ()


class MissingService(LookupError):
    pass


@dataclasses.dataclass(slots=True)
class PluginContext:
    """What a plugin's ``load`` is given: the process's shared parts, and the services earlier plugins provided."""

    settings: Settings
    db: Database
    ami: AmiClient
    runtime: AsteriskRuntime
    mqtt: MqttClient  # the platform's MQTT connection (its state is MqttState.OFF when there is no broker)
    broker: BrokerChoice  # which broker that is: the platform-managed Mosquitto, another one, or none
    services: dict[web.AppKey[Any], Any] = dataclasses.field(default_factory=dict)
    # Services that stand in for what a plugin provides under the same key (a test's S3-backed store, say).
    replacements: dict[web.AppKey[Any], Any] = dataclasses.field(default_factory=dict)
    loading: str = ""  # the plugin whose load is running, named in errors
    # The process loading: PLATFORM_PROCESS, or TELEMETRY_PROCESS (which starts no job, serves no web and runs
    # only the subscriptions marked ``telemetry``).
    process: str = PLATFORM_PROCESS

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
