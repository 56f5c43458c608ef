"""Render asterisk-config/ and dialplans/ templates, plus database content, into an instance's config dir."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import secrets
import stat
from pathlib import Path

import jinja2
from sqlalchemy import select

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import PROJECT_ROOT, RECORDABLE_QUEUES, Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceStatus
from callcenter.secret_files import generated_secret
from callcenter.sip_security.models import SipBan
from callcenter.users.models import User
from callcenter.users.passwords import SIP_REALM

TEMPLATE_DIRS = (PROJECT_ROOT / "asterisk-config", PROJECT_ROOT / "dialplans")
AMI_USERNAME = "callcenter"
# The platform AMI user's event classes: only those of the events it subscribes to. Not dtmf, dialplan (Newexten
# and VarSet on every dialplan step: the busiest stream there is), cdr, cel or reporting.
AMI_READ_CLASSES = (
    "system",  # FullyBooted: the resyncs wait for it after every login
    "call",  # Newchannel, Newstate, Hangup, OriginateResponse, Confbridge*, ChanSpyStart
    "agent",  # QueueCaller*, AgentCalled/Connect/Complete, QueueMember*
    "user",  # UserEvent: SOS steps, recordings, follow-up calls
    "security",  # ChallengeResponseFailed, InvalidAccountID, SuccessfulAuth: SIP brute-force bans (sip_security)
)
# The action classes: Asterisk lets an action through when the user holds any one of the classes it names.
AMI_WRITE_CLASSES = (
    "call",  # Redirect, Setvar, Hangup, ConfbridgeMute/Unmute/Kick
    "agent",  # QueueAdd, QueueRemove, QueuePause
    "originate",  # Originate (never with Application=System & co.: those also need "system", which it lacks)
    "reporting",  # CoreShowChannels (system or reporting)
    # Reload (of res_pjsip.so after provisioning or a SIP ban) names config or system; config is the lesser. It
    # also allows GetConfig/UpdateConfig, which gives nothing to whoever holds the secret: it is readable only by
    # the platform's OS user, which writes Asterisk's configuration files itself.
    "config",
    "message",  # MessageSend: the answer (<mrs>) to a SCAIP social-alarm unit's MESSAGE (alarms.scaip)
)


@dataclasses.dataclass(frozen=True, slots=True)
class SipPeer:
    id: int
    kind: str
    sip_username: str
    sip_ha1: str
    caller_name: str
    caller_number: str


@dataclasses.dataclass(frozen=True, slots=True)
class AgentPhone:
    username: str
    extension: str
    sip_ha1: str
    caller_name: str


@dataclasses.dataclass(frozen=True, slots=True)
class TelephonyContent:
    devices: tuple[SipPeer, ...]
    agents: tuple[AgentPhone, ...]
    # Networks (``203.0.113.9/32``) banned by SIP brute-force protection: denied by the PJSIP ACL.
    banned: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class AmiCredentials:
    username: str
    secret: str


def ami_credentials(settings: Settings) -> AmiCredentials:
    """The AMI secret, generated once per data dir and instance, readable by root only."""
    path = settings.data_dir / "secrets" / f"ami-{settings.asterisk_instance}.secret"
    return AmiCredentials(AMI_USERNAME, generated_secret(path, lambda: secrets.token_urlsafe(32)))


async def load_content(db: Database) -> TelephonyContent:
    async with db.transaction() as session:
        devices = (await session.scalars(
            select(Device).where(Device.status != DeviceStatus.RETIRED).order_by(Device.id)
        )).all()
        users = (await session.scalars(
            select(User).where(User.extension.is_not(None), User.sip_ha1.is_not(None), User.active).order_by(User.id)
        )).all()
        # The bans in force now: one past its time is left out even before sip_security marks it lifted, so no
        # render (`callcenter asterisk render` with the platform down, say) keeps an address out longer than meant.
        banned = (await session.scalars(
            select(SipBan.address).where(SipBan.lifted_at.is_(None), SipBan.expires_at > utcnow())
            .order_by(SipBan.address)
        )).all()
        return TelephonyContent(
            devices=tuple(
                SipPeer(d.id, d.kind.value, d.sip_username, d.sip_ha1, f"device-{d.id}",
                        d.phone_number or d.sip_username)
                for d in devices
            ),
            agents=tuple(
                AgentPhone(u.username, u.extension or "", u.sip_ha1 or "", u.display_name or u.username) for u in users
            ),
            banned=tuple(acl_network(address) for address in banned),
        )


def acl_network(address: str) -> str:
    """One address as the network an ACL ``deny`` names: ``203.0.113.9/32``, ``2001:db8::7/128``."""
    return str(ipaddress.ip_network(address))


@dataclasses.dataclass(frozen=True, slots=True)
class SipTlsFiles:
    """Where Asterisk reads the SIP TLS certificate and key: copies inside its instance, since a chrooted Asterisk
    cannot see CC_SIP_TLS_CERT/KEY where they are."""

    cert: Path
    key: Path


def sip_tls_files(runtime: AsteriskRuntime) -> SipTlsFiles:
    # Not in astkeydir (lib/keys): res_crypto would try to load the key there as one of its own.
    tls = runtime.instance_dir / "tls"
    return SipTlsFiles(cert=tls / "sip-tls.crt", key=tls / "sip-tls.key")


def install_sip_tls_files(settings: Settings, runtime: AsteriskRuntime) -> None:
    """Copy CC_SIP_TLS_CERT/KEY into the instance (the key 0600), or remove old copies once TLS is off.

    A copy whose content is unchanged is left alone: on a reload Asterisk restarts its TLS listener with new files
    when their size or time changed (a rotation), so rewriting them at every provisioning render would restart it
    for nothing."""
    inside = sip_tls_files(runtime)
    targets = ((settings.sip_tls_cert, runtime.host_path(inside.cert), 0o644),
               (settings.sip_tls_key, runtime.host_path(inside.key), 0o600))
    for source, target, mode in targets:
        if source is None:
            target.unlink(missing_ok=True)
            continue
        data = source.read_bytes()
        if target.exists() and target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == mode:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".tmp")
        temporary.unlink(missing_ok=True)
        # Created with its final mode: the key is never readable by others, not even for a moment.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        temporary.replace(target)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in TEMPLATE_DIRS]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Asterisk config, not HTML
    )


def render_files(settings: Settings, runtime: AsteriskRuntime, content: TelephonyContent,
                 credentials: AmiCredentials) -> dict[str, str]:
    """File name → text for every template; pure, so tests can inspect it without writing anything."""
    env = _environment()
    context = {
        "settings": settings,
        "instance": runtime.instance,
        "directories": {k: str(v) for k, v in runtime.directories().items()},
        "recordings_spool": str(recordings_spool(runtime)),
        "recordable_queues": RECORDABLE_QUEUES,
        "sos_moh_dir": str(runtime.instance_dir / "moh" / "sos"),
        "module_dir": runtime.module_dir,
        "ami_username": credentials.username,
        "ami_secret": credentials.secret,
        "ami_read": AMI_READ_CLASSES,
        "ami_write": AMI_WRITE_CLASSES,
        "sip_realm": SIP_REALM,
        "devices": content.devices,
        "agents": content.agents,
        "banned": content.banned,
        "sip_tls_files": sip_tls_files(runtime),
    }
    rendered: dict[str, str] = {}
    for name in sorted(env.list_templates(extensions=["j2"])):
        rendered[name.removesuffix(".j2")] = env.get_template(name).render(context)
    return rendered


def recordings_spool(runtime: AsteriskRuntime) -> Path:
    """Where MixMonitor writes, as Asterisk sees it; the recording pipeline picks files up from here."""
    return runtime.directories()["astspooldir"] / "recordings"


SOS_REASSURANCE = Path("sounds") / "zh-CN" / "sos-reassure.wav"
STOCK_MOH = Path("/usr/share/asterisk/moh")


def prepare_media(runtime: AsteriskRuntime) -> None:
    """The recordings spool and the SOS hold music: the reassurance prompt (when built) first, then stock music."""
    runtime.host_path(recordings_spool(runtime)).mkdir(parents=True, exist_ok=True)
    sos_dir = runtime.host_path(runtime.instance_dir / "moh" / "sos")
    sos_dir.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, Path] = {}
    reassurance = runtime.instance_dir / SOS_REASSURANCE
    if runtime.host_path(reassurance).exists():
        wanted["00-sos-reassure.wav"] = reassurance
    stock = runtime.host_path(STOCK_MOH)
    for index, track in enumerate(sorted(stock.glob("*.wav")) if stock.is_dir() else [], start=1):
        wanted[f"{index:02d}-{track.name}"] = STOCK_MOH / track.name
    for existing in sos_dir.iterdir():
        if existing.name not in wanted:
            existing.unlink()
    for name, target in wanted.items():
        link = sos_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        # Absolute in-root targets: the link resolves inside Asterisk's root, whatever the host path is.
        link.symlink_to(target)


def write_files(runtime: AsteriskRuntime, files: dict[str, str]) -> Path:
    """Write atomically (temp file + rename) so a reload never reads half a file."""
    runtime.make_instance_dirs()
    prepare_media(runtime)
    etc = runtime.host_path(runtime.instance_dir / "etc")
    for name, text in files.items():
        target = etc / name
        temporary = target.with_suffix(target.suffix + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o640)
        temporary.replace(target)
    return etc


async def render(settings: Settings, runtime: AsteriskRuntime, db: Database) -> Path:
    content = await load_content(db)

    def write() -> Path:
        # The certificate and key first: the configuration naming them may be read as soon as it is written.
        install_sip_tls_files(settings, runtime)
        return write_files(runtime, render_files(settings, runtime, content, ami_credentials(settings)))

    # File writes happen off the event loop: calls are being served while an operator provisions.
    return await asyncio.to_thread(write)
