"""The SIP security domain: brute-force protection. Asterisk's security events (AMI class ``security``) are counted
per source address; too many failures ban the address in the PJSIP ACL (rendered and reloaded by the provisioner)
until the ban expires or an admin lifts it; ``/api/v1/sip-bans`` and the ``/sip-bans`` page show them."""

from __future__ import annotations

from pathlib import Path

from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext, on_ami
from callcenter.devices.services import PROVISIONER
from callcenter.sip_security import http
from callcenter.sip_security.guard import EVENTS
from callcenter.sip_security.models import SipBan
from callcenter.sip_security.services import SIP_GUARD, GuardSettings, SipGuard


async def sip_bans_page(request: PageRequest) -> PageContent:
    """The bans in force (``static/sip_bans.js`` over ``GET /api/v1/sip-bans``): address, failures, since, until;
    those the API lets lift a ban (admins) get a button per ban."""
    may_lift = request.may(http.routes.roles_for("DELETE", "/sip-bans/{id}"))
    return PageContent(values={"may_lift": may_lift}, config={"mayLift": may_lift})


SIP_BANS_PAGE = Page("/sip-bans", "sip_bans", Path(__file__).parent, content=sip_bans_page,
                     roles=http.routes.roles_for("GET", "/sip-bans"),
                     nav=NavLink("common.nav.sip_bans", "nav-sip-bans", everywhere=False))


def load(ctx: PluginContext) -> Contribution:
    config = GuardSettings.from_settings(ctx.settings)
    guard = ctx.provide(SIP_GUARD, SipGuard(ctx.db, ctx.require(PROVISIONER), config))
    return Contribution(routes=http.routes, ami=[on_ami(EVENTS, guard.handle)], jobs=[guard], pages=[SIP_BANS_PAGE])


plugin = Plugin("sip_security", load, models=(SipBan,))
