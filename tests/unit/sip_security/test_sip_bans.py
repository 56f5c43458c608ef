"""Bans made from security events, kept in the database, rendered into the PJSIP ACL, lifted at their time or by an
admin, audited; the API and its roles. Real database (each backend), real rendering into a private Asterisk root;
AMI is down here (the client never starts), so each reload is the provisioner's "pending" path — the integration
test (tests/integration/test_sip_security.py) runs the same against a real Asterisk."""

from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select
from structlog.testing import capture_logs

from callcenter.audit.models import AuditEntry
from callcenter.config import Settings
from callcenter.devices.services import PROVISIONER
from callcenter.sip_security.guard import Offence
from callcenter.sip_security.models import SipBan
from callcenter.sip_security.services import SIP_GUARD, GuardSettings, SipGuard
from callcenter.telephony.ami import AmiEvent
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.sip_security.test_guard import success, wrong_password
from tests.unit.web.test_pages import log_in

ATTACKER = "IPV4/UDP/203.0.113.9/5061"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


def acl(settings: Settings) -> str:
    return (settings.asterisk_root / "opt/callcenter" / settings.asterisk_instance / "etc/pjsip_acl.conf").read_text()


def guard_of(api: Api, clock: Clock, *, failures: int = 3, exempt: str = "") -> SipGuard:
    config = GuardSettings.from_settings(api.settings.replace(
        sip_ban_failures=failures, sip_ban_window_seconds=60, sip_ban_seconds=600,
        sip_ban_exempt=Settings.from_env({"CC_SIP_BAN_EXEMPT": exempt}).sip_ban_exempt))
    return SipGuard(api.db, api.client.server.app[PROVISIONER], config, clock=clock)


async def wrong_passwords(guard: SipGuard, count: int, remote: str = ATTACKER) -> None:
    for _ in range(count):
        for event in wrong_password(remote):
            await guard.handle(AmiEvent(event))


async def test_the_nth_failure_bans_the_address_in_the_rendered_acl_and_audits_it(api: Api) -> None:
    clock = Clock()
    guard = guard_of(api, clock)
    await wrong_passwords(guard, 2)
    assert await api.count(SipBan) == 0
    await wrong_passwords(guard, 1)
    async with api.db.transaction() as session:
        ban = (await session.scalars(select(SipBan))).one()
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "sip_ban.create"))).one()
    assert (ban.address, ban.failures, ban.accounts, ban.lifted_at) == ("203.0.113.9", 3, ["dev-1"], None)
    assert ban.banned_at == clock.now and ban.expires_at == clock.now + dt.timedelta(seconds=600)
    assert (entry.actor_label, entry.target_id, entry.details["address"]) == ("sip-guard", str(ban.id), "203.0.113.9")
    rendered = acl(api.settings)
    assert "[cc-sip-bans]\ntype = acl\n" in rendered and "deny = 203.0.113.9/32\n" in rendered
    # Further failures while banned add nothing (Asterisk refuses the address before authenticating anyway).
    await wrong_passwords(guard, 5)
    assert await api.count(SipBan) == 1


async def test_a_ban_is_lifted_at_its_time_and_a_restart_keeps_it_until_then(api: Api) -> None:
    clock = Clock()
    guard = guard_of(api, clock)
    await wrong_passwords(guard, 3)
    # The platform restarts: a new guard learns the ban from the database and keeps it.
    restarted = guard_of(api, clock)
    await restarted.start()
    try:
        await wrong_passwords(restarted, 3)
        assert await api.count(SipBan) == 1
        assert await restarted.sweep() == 0
        assert "deny = 203.0.113.9/32" in acl(api.settings)
        clock.now += dt.timedelta(seconds=601)
        assert await restarted.sweep() == 1
    finally:
        await restarted.stop()
    async with api.db.transaction() as session:
        ban = (await session.scalars(select(SipBan))).one()
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("sip_ban.%"))
                                         .order_by(AuditEntry.id))).all()
    assert (ban.lifted_at, ban.lifted_by) == (clock.now, "expiry")
    assert actions == ["sip_ban.create", "sip_ban.expired"]
    assert "deny" not in acl(api.settings)
    # Counting starts afresh: the address is banned again only after another full count.
    await wrong_passwords(restarted, 2)
    assert await api.count(SipBan) == 1
    await wrong_passwords(restarted, 1)
    assert await api.count(SipBan) == 2


async def test_a_render_leaves_out_a_ban_past_its_time_even_before_the_sweep(api: Api) -> None:
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    async with api.db.transaction() as session:
        session.add(SipBan(address="198.51.100.4", failures=10, accounts=[], first_failure_at=earlier,
                           banned_at=earlier, expires_at=earlier + dt.timedelta(hours=1)))  # past its time
        session.add(SipBan(address="2001:db8::7", failures=10, accounts=[], first_failure_at=earlier,
                           banned_at=earlier, expires_at=earlier + dt.timedelta(hours=3)))
    guard = guard_of(api, Clock())
    await wrong_passwords(guard, 3)  # any apply renders from the database
    rendered = acl(api.settings)
    assert "deny = 2001:db8::7/128" in rendered and "deny = 203.0.113.9/32" in rendered
    assert "198.51.100.4" not in rendered


async def test_an_exempt_address_or_one_a_device_authenticated_from_is_logged_never_banned(api: Api) -> None:
    guard = guard_of(api, Clock(), exempt="203.0.113.0/24")
    with capture_logs() as logs:
        await wrong_passwords(guard, 10)
        await guard.handle(AmiEvent(success("IPV4/UDP/198.51.100.4/5060")))
        await wrong_passwords(guard, 10, remote="IPV4/UDP/198.51.100.4/5060")
    assert await api.count(SipBan) == 0
    withheld = [(entry["address"], entry["reason"]) for entry in logs if entry["event"] == "sip_security.ban_withheld"]
    assert withheld == [("203.0.113.9", "exempt"), ("198.51.100.4", "authenticated_lately")]  # once a window each


async def test_supervisors_list_the_bans_in_force_and_only_admins_lift_them(api: Api) -> None:
    guard: SipGuard = api.client.server.app[SIP_GUARD]
    ban = await guard.ban(Offence("203.0.113.9", 10, dt.datetime.now(dt.UTC), ("dev-1",)))
    assert ban is not None
    status, body = await api.request("GET", "/api/v1/sip-bans", role=Role.SUPERVISOR)
    assert status == 200
    [item] = body["items"]
    assert (item["id"], item["address"], item["failures"], item["accounts"]) == (ban.id, "203.0.113.9", 10, ["dev-1"])
    assert {"since", "until", "first_failure_at"} <= set(item)
    for role in (Role.AGENT, Role.AUDITOR):
        assert (await api.request("GET", "/api/v1/sip-bans", role=role))[0] == 403
    assert (await api.request("DELETE", f"/api/v1/sip-bans/{ban.id}", role=Role.SUPERVISOR))[0] == 403

    status, lifted = await api.request("DELETE", f"/api/v1/sip-bans/{ban.id}")
    assert status == 200, lifted
    assert lifted["lifted_at"] is not None and lifted["provisioning"] == "pending"  # AMI is down in unit tests
    assert "deny" not in acl(api.settings)
    async with api.db.transaction() as session:
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "sip_ban.lift"))).one()
        assert entry.target_id == str(ban.id) and entry.actor_label == lifted["lifted_by"]
    assert (await api.request("GET", "/api/v1/sip-bans", role=Role.SUPERVISOR))[1]["items"] == []
    status, again = await api.request("DELETE", f"/api/v1/sip-bans/{ban.id}")
    assert status == 409 and again["error"]["field"] == "id"
    assert (await api.request("DELETE", "/api/v1/sip-bans/9999"))[0] == 404


async def test_the_page_is_for_supervisors_and_admins_and_only_admins_get_the_lift_button(api: Api) -> None:
    for role, status, may_lift in ((Role.AGENT, 403, None), (Role.SUPERVISOR, 200, False), (Role.ADMIN, 200, True)):
        api.client.session.cookie_jar.clear()
        user = await api.user(role)
        assert (await log_in(api.client, user.username)).status == 303
        page = await api.client.get("/sip-bans")
        text = await page.text()
        assert page.status == status, role
        if may_lift is None:
            assert "sip_bans.js" not in text and "只有班长和管理员" in text
            continue
        assert "sip_bans.js" in text and 'id="bans-table"' in text and "SIP 封禁" in text
        config = json.loads(re.search(r'<script id="cc-config" type="application/json">(.*?)</script>', text,
                                      re.S).group(1))  # type: ignore[union-attr]
        assert config["mayLift"] is may_lift
