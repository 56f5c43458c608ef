"""What the API's handlers find on the aiohttp application: the database, the token service, the provisioner."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.agents.services import AgentService
from callcenter.api.tokens import TokenService
from callcenter.conferences.services import ConferenceService
from callcenter.db.session import Database
from callcenter.devices.services import Provisioner
from callcenter.follow_up_calls.services import FollowUpDialer
from callcenter.orders.notify import OrderNotifier
from callcenter.recordings.backends import RecordingStores
from callcenter.spy.services import SpyService
from callcenter.users.login_guard import LoginGuard
from callcenter.wallboard.services import WallboardService

DATABASE = web.AppKey("api_database", Database)
TOKENS = web.AppKey("api_tokens", TokenService)
PROVISIONER = web.AppKey("api_provisioner", Provisioner)
# Log-in throttling, shared by the API's and the panel's log-in so their attempts add up.
LOGIN_GUARD = web.AppKey("api_login_guard", LoginGuard)
AGENTS = web.AppKey("api_agents", AgentService)
RECORDINGS = web.AppKey("api_recordings", RecordingStores)
# The centre's time zone (CC_TIMEZONE): deadlines in working days are counted on its calendar.
CENTRE_TIMEZONE = web.AppKey("api_centre_timezone", str)


def centre_zone(app: web.Application) -> ZoneInfo:
    """The centre's time zone (CC_TIMEZONE)."""
    return ZoneInfo(app[CENTRE_TIMEZONE])


def centre_today(app: web.Application) -> dt.date:
    """Today on the centre's calendar: a provider's licence runs out at the end of its last day there."""
    return dt.datetime.now(centre_zone(app)).date()


# Seconds a signed provider report's timestamp may differ from the server's clock (CC_PROVIDER_API_MAX_SKEW).
PROVIDER_API_MAX_SKEW = web.AppKey("api_provider_api_max_skew", int)
# Live notices to provider portals: dispatches and the centre's steps that affect a provider (orders.notify).
ORDER_NOTIFIER = web.AppKey("api_order_notifier", OrderNotifier)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiServices:
    """Everything the API needs from the platform, built once in ``platform.py`` and handed to ``create_app``."""

    db: Database
    tokens: TokenService
    provisioner: Provisioner
    conferences: ConferenceService | None = None  # the emergency conference; absent without an AMI client
    agents: AgentService | None = None  # queue log-in and pause; absent where no AMI client exists (unit tests)
    recordings: RecordingStores | None = None  # where recordings' audio is read from, by each row's backend
    spy: SpyService | None = None  # supervisors' listen / whisper / barge; absent without an AMI client
    wallboard: WallboardService | None = None  # supervisors' live board; absent without an AMI client
    follow_ups: FollowUpDialer | None = None  # one-click follow-up calls (回访); absent without an AMI client
    notifier: OrderNotifier | None = None  # provider-portal notices; create_app makes one when absent (tests)
    timezone: str = "Asia/Shanghai"  # CC_TIMEZONE
    provider_api_max_skew: int = 300  # CC_PROVIDER_API_MAX_SKEW
    login_guard: LoginGuard | None = None  # create_app makes one with the defaults when absent (tests)
