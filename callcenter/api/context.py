"""What every domain's handlers find on the aiohttp application: the database, the token service, the centre's
calendar. A domain's own services sit there too, under keys the domain defines (callcenter.contract)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.api.tokens import TokenService
from callcenter.db.session import Database

DATABASE = web.AppKey("api_database", Database)
TOKENS = web.AppKey("api_tokens", TokenService)
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
