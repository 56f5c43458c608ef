from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

from callcenter.asterisk.render import AgentPhone, SipPeer, TelephonyContent, ami_credentials, render_files
from callcenter.asterisk.runtime import AsteriskRuntime, debian_mirror
from callcenter.config import Settings
from callcenter.users.passwords import sip_ha1

CONTENT = TelephonyContent(
    devices=(SipPeer(7, "one_touch", "dev-7", sip_ha1("dev-7", "device-pass-7"), "device-7", "17700000007"),),
    agents=(AgentPhone("agent01", "8001", sip_ha1("8001", "agent-pass-1"), "坐席一号"),),
)


def _render(tmp_path: Path, content: TelephonyContent = CONTENT, **env: str) -> dict[str, str]:
    settings = Settings.from_env({"CC_DATA_DIR": str(tmp_path), **env})
    modules = tmp_path / "root" / "usr/lib/x86_64-linux-gnu/asterisk/modules"
    modules.mkdir(parents=True)
    runtime = AsteriskRuntime(tmp_path / "root", "unit", tmp_path / "root/opt/callcenter")
    return render_files(settings, runtime, content, ami_credentials(settings))


def test_every_config_file_is_rendered(tmp_path: Path) -> None:
    files = _render(tmp_path)
    assert {"asterisk.conf", "modules.conf", "pjsip.conf", "pjsip_endpoints.conf", "pjsip_acl.conf", "manager.conf",
            "confbridge.conf",
            "queues.conf", "logger.conf", "rtp.conf", "cdr.conf", "extensions.conf"} <= set(files)
    assert "astetcdir => /opt/callcenter/unit/etc" in files["asterisk.conf"]
    assert "[directories]\n" in files["asterisk.conf"]  # "[directories](!)" would be a template Asterisk ignores


def test_endpoints_come_from_the_database_with_digests_not_passwords(tmp_path: Path) -> None:
    endpoints = _render(tmp_path)["pjsip_endpoints.conf"]
    assert "[dev-7](endpoint-common)" in endpoints
    assert "context = from-devices" in endpoints and "message_context = cc-device-messages" in endpoints
    assert f"md5_cred = {sip_ha1('dev-7', 'device-pass-7')}" in endpoints
    assert "[8001](endpoint-common)" in endpoints and "context = from-agents" in endpoints
    assert "device-pass-7" not in endpoints and "agent-pass-1" not in endpoints


def test_ami_is_loopback_only_with_a_generated_secret_and_least_privilege(tmp_path: Path) -> None:
    manager = _render(tmp_path, CC_AMI_PORT="6038")["manager.conf"]
    secret = (tmp_path / "secrets" / "ami-main.secret").read_text()
    assert len(secret) >= 32
    assert f"secret = {secret}" in manager
    assert "bindaddr = 127.0.0.1" in manager and "port = 6038" in manager
    assert "deny = 0.0.0.0/0.0.0.0" in manager and "permit = 127.0.0.1/255.255.255.255" in manager
    classes = {key.strip(): set(value.strip().split(",")) for key, _, value in
               (line.partition("=") for line in manager.splitlines() if line.startswith(("read =", "write =")))}
    # Only the classes of the events the platform subscribes to and of the actions it sends (the integration test
    # checks these against what Asterisk 22 itself requires): no dtmf, dialplan, cdr or reporting events.
    assert classes["read"] == {"system", "call", "agent", "user", "security"}
    assert classes["write"] == {"call", "agent", "originate", "reporting", "config", "message"}
    assert not {"command", "system", "all"} & classes["write"]
    # Devices' SIP MESSAGEs run on Message/ channels: their UserEvent (SCAIP) comes, their channel events never.
    for event in ("Newchannel", "Newstate", "Hangup"):
        assert (f"eventfilter(action(exclude),name({event}),header(Channel),method(starts_with)) = Message/"
                in manager.splitlines())
    assert "hide_messaging_ami_events = yes" in _render(tmp_path / "conf")["asterisk.conf"].splitlines()
    assert stat.S_IMODE((tmp_path / "secrets" / "ami-main.secret").stat().st_mode) == 0o600
    # The secret is generated once and then reused, so a re-render never locks the platform out.
    assert _render(tmp_path / "again", CC_DATA_DIR=str(tmp_path), CC_AMI_PORT="6038")["manager.conf"] == manager


def test_ports_and_agi_address_follow_settings(tmp_path: Path) -> None:
    files = _render(tmp_path, CC_SIP_BIND="127.0.0.1:15060", CC_AGI_PORT="14573", CC_RTP_START="30000",
                    CC_RTP_END="30099")
    assert "bind = 127.0.0.1:15060" in files["pjsip.conf"]
    assert "rtpstart = 30000" in files["rtp.conf"] and "rtpend = 30099" in files["rtp.conf"]
    assert "CC_AGI = agi://127.0.0.1:14573" in files["extensions.conf"]


def test_every_agi_call_in_the_dialplan_has_a_failure_branch(tmp_path: Path) -> None:
    lines = _render(tmp_path)["extensions.conf"].splitlines()
    agi_lines = [i for i, line in enumerate(lines) if "AGI(" in line and not line.lstrip().startswith(";")]
    assert agi_lines
    for index in agi_lines:
        assert "Set(CC_AGI_RESULT=)" in lines[index - 1]
        assert '"${AGISTATUS}/${CC_AGI_RESULT}" != "SUCCESS/ok"' in lines[index + 1]


def test_caller_facing_contexts_have_no_pattern_extensions(tmp_path: Path) -> None:
    """Toll-fraud guard: no `_X.`-style pattern in a context a device or phone lands in."""
    dialplan = _render(tmp_path)["extensions.conf"]
    for context in ("[from-devices]", "[from-agents]"):
        body = dialplan.split(context, 1)[1].split("\n[", 1)[0]
        assert "exten => _" not in body


def test_debian_mirror_is_read_from_the_machine(tmp_path: Path, monkeypatch: object) -> None:
    sources = tmp_path / "apt" / "sources.list.d"
    sources.mkdir(parents=True)
    (sources / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"
    )
    assert debian_mirror(tmp_path / "apt") == "http://mirror.invalid/debian"
    legacy = tmp_path / "legacy"
    (legacy / "sources.list.d").mkdir(parents=True)
    (legacy / "sources.list").write_text("deb [arch=amd64] http://legacy.invalid/debian bookworm main\n")
    assert debian_mirror(legacy) == "http://legacy.invalid/debian"


def test_queues_record_answered_calls_as_configured_and_sos_always(tmp_path: Path) -> None:
    dialplan = _render(tmp_path)["extensions.conf"]
    assert "CC_RECORD_GOSUB_hotline = cc-record-answered" in dialplan
    assert "CC_RECORD_GOSUB_emergency = cc-record-answered" in dialplan
    assert "Queue(${CC_QUEUE},,,,,,${CC_RECORD_GOSUB_${CC_QUEUE}})" in dialplan
    assert "Queue(hotline,,,,,,${CC_RECORD_GOSUB_hotline})" in dialplan  # also when the platform is down
    not_recorded = _render(tmp_path / "none", CC_RECORD_QUEUES="none")["extensions.conf"]
    assert "CC_RECORD_GOSUB_hotline = \n" in not_recorded
    sos = not_recorded.split("[cc-sos]")[1].split("\n\n")[0]
    assert "MixMonitor(" in sos  # an SOS is recorded from its first second whatever the queues say


def test_sip_bans_are_denied_by_a_pjsip_acl_included_in_pjsip_conf(tmp_path: Path) -> None:
    files = _render(tmp_path)
    assert "#include pjsip_acl.conf" in files["pjsip.conf"]
    assert "type = acl" not in files["pjsip_acl.conf"]  # no ban: no ACL object, every address is served
    banned = dataclasses.replace(CONTENT, banned=("127.0.0.3/32", "2001:db8::7/128"))
    acl = _render(tmp_path / "banned", banned)["pjsip_acl.conf"]
    assert "[cc-sip-bans]\ntype = acl\ndeny = 127.0.0.3/32\ndeny = 2001:db8::7/128\n" in acl
    assert "permit" not in acl  # an address no rule names is allowed: only the banned ones are denied


def test_a_second_registration_replaces_the_first(tmp_path: Path) -> None:
    """docs/security.md: one contact per device and phone, the newest registration wins (max_contacts = 1,
    remove_existing = yes), so a device that rebooted behind a new NAT mapping is reachable at once."""
    files = _render(tmp_path)
    common = files["pjsip.conf"].split("[aor-common](!)", 1)[1].split("\n\n", 1)[0]
    assert "max_contacts = 1" in common and "remove_existing = yes" in common
    endpoints = files["pjsip_endpoints.conf"]
    assert "[dev-7](aor-common)" in endpoints and "[8001](aor-common)" in endpoints
    assert "max_contacts" not in endpoints and "remove_existing" not in endpoints  # nothing overrides it
