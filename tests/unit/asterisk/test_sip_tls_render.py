"""SIP over TLS and SRTP as rendered into pjsip.conf and the dialplan, and the certificate's copy in the instance."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from callcenter.asterisk.render import (
    AgentPhone,
    SipPeer,
    TelephonyContent,
    ami_credentials,
    install_sip_tls_files,
    render_files,
)
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from tests.tls import CertificateFiles, self_signed_certificate

CONTENT = TelephonyContent(
    devices=(SipPeer(7, "one_touch", "dev-7", "0" * 32, "device-7", "17700000007"),),
    agents=(AgentPhone("agent01", "8001", "1" * 32, "坐席一号"),),
)
TRUNK = "sip:127.0.0.1:5090"


@pytest.fixture
def pair(tmp_path: Path) -> CertificateFiles:
    return self_signed_certificate(tmp_path / "tls")


def _runtime(tmp_path: Path) -> AsteriskRuntime:
    (tmp_path / "root" / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True, exist_ok=True)
    return AsteriskRuntime(tmp_path / "root", "unit", tmp_path / "root/opt/callcenter")


def _settings(tmp_path: Path, pair: CertificateFiles | None, **env: str) -> Settings:
    tls = {"CC_SIP_TLS_CERT": str(pair.cert), "CC_SIP_TLS_KEY": str(pair.key)} if pair else {}
    return Settings.from_env({"CC_DATA_DIR": str(tmp_path), "CC_SIP_BIND": "192.0.2.10:5060", **tls, **env})


def _render(tmp_path: Path, pair: CertificateFiles | None, **env: str) -> dict[str, str]:
    settings = _settings(tmp_path, pair, **env)
    return render_files(settings, _runtime(tmp_path), CONTENT, ami_credentials(settings))


def _sections(pjsip: str) -> dict[str, dict[str, list[str]]]:
    """Section name (templates' "(!)" and parents stripped) → option → every value it is given."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in pjsip.splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("["):
            current = sections.setdefault(line[1:line.index("]")], {})
        elif "=" in line and current is not None and not line.startswith("#"):
            option, _, value = line.partition("=")
            current.setdefault(option.strip(), []).append(value.strip())
    return sections


def test_without_a_certificate_devices_and_phones_are_on_udp_as_before(tmp_path: Path) -> None:
    files = _render(tmp_path, None, CC_TRUNK_URI=TRUNK)
    sections = _sections(files["pjsip.conf"])
    assert "transport-tls" not in sections
    assert sections["transport-udp"]["bind"] == ["192.0.2.10:5060"]
    assert sections["endpoint-common"]["transport"] == ["transport-udp"]
    assert "media_encryption" not in sections["endpoint-common"]
    assert "cc-tls-only" not in files["extensions.conf"]
    assert "exten => sos,1,Goto(cc-sos,s,1)" in files["extensions.conf"]
    assert "PJSIP_TRANSPORT" not in files["extensions.conf"]  # devices' MESSAGEs over any transport


def test_a_certificate_adds_a_tls_transport_with_strong_ciphers_only(tmp_path: Path,
                                                                                 pair: CertificateFiles) -> None:
    sections = _sections(_render(tmp_path, pair, CC_SIP_TLS_PORT="5071")["pjsip.conf"])
    tls = sections["transport-tls"]
    assert tls["protocol"] == ["tls"]
    assert tls["bind"] == ["192.0.2.10:5071"]  # the SIP bind's host
    # Asterisk reads the instance's copies (it may be chrooted), never the operator's files.
    assert tls["cert_file"] == ["/opt/callcenter/unit/tls/sip-tls.crt"]
    assert tls["priv_key_file"] == ["/opt/callcenter/unit/tls/sip-tls.key"]
    # Any version OpenSSL offers, but only AEAD ciphers with ECDHE: that leaves TLS 1.2 and 1.3.
    assert tls["method"] == ["sslv23"]
    ciphers = tls["cipher"][0].split(",")
    assert ciphers and all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers), ciphers
    assert tls["verify_client"] == ["no"] and tls["require_client_cert"] == ["no"]


def test_tls_optional_keeps_udp_and_lets_each_device_choose(tmp_path: Path, pair: CertificateFiles) -> None:
    files = _render(tmp_path, pair, CC_TRUNK_URI=TRUNK)
    sections = _sections(files["pjsip.conf"])
    assert sections["transport-udp"]["bind"] == ["192.0.2.10:5060"]
    common = sections["endpoint-common"]
    assert "transport" not in common  # called back over the transport it registered on
    assert common["media_encryption"] == ["sdes"] and common["media_encryption_optimistic"] == ["yes"]
    assert sections["trunk"]["transport"] == ["transport-udp"] and sections["trunk"]["media_encryption"] == ["no"]
    assert "cc-tls-only" not in files["extensions.conf"]


def test_tls_required_pins_devices_and_phones_to_tls_and_srtp_and_refuses_their_calls_over_udp(
        tmp_path: Path, pair: CertificateFiles) -> None:
    files = _render(tmp_path, pair, CC_TRUNK_URI=TRUNK, CC_SIP_TLS_REQUIRED="1")
    sections = _sections(files["pjsip.conf"])
    common = sections["endpoint-common"]
    assert common["transport"] == ["transport-tls"]
    assert common["media_encryption"] == ["sdes"] and common["media_encryption_optimistic"] == ["no"]
    endpoints = files["pjsip_endpoints.conf"]
    assert "[dev-7](endpoint-common)" in endpoints and "[8001](endpoint-common)" in endpoints
    # The trunk still needs UDP, and stays plain.
    assert sections["transport-udp"]["bind"] == ["192.0.2.10:5060"]
    assert sections["trunk"]["transport"] == ["transport-udp"] and sections["trunk"]["media_encryption"] == ["no"]

    text = files["extensions.conf"]
    for context, extensions in (("from-devices", ("sos", "12349")), ("from-agents", ("12349",))):
        body = text.split(f"[{context}]\n", 1)[1].split("\n\n", 1)[0]
        for extension in extensions:
            assert f"exten => {extension},1,Gosub(cc-tls-only,s,1)\n same => n,Goto(" in body, body
    guard = text.split("[cc-tls-only]\n", 1)[1].split("\n\n", 1)[0]
    assert '${CHANNEL(pjsip,secure)}" = "1"' in guard and "Hangup(21)" in guard and "Return()" in guard
    # A device's SIP MESSAGE (a SCAIP alarm) reaches the platform only over TLS too.
    messages = text.split("[cc-device-messages]\n", 1)[1].split("\n\n", 1)[0]
    assert '${MESSAGE_DATA(PJSIP_TRANSPORT)}" = "tls"]?deliver)' in messages
    assert messages.index("?deliver)") < messages.index("n,Hangup()") < messages.index("(deliver),UserEvent(CcScaip")


def test_tls_required_without_a_trunk_leaves_nothing_listening_on_udp(tmp_path: Path, pair: CertificateFiles) -> None:
    pjsip = _render(tmp_path, pair, CC_SIP_TLS_REQUIRED="1")["pjsip.conf"]
    assert "transport-udp" not in pjsip
    assert "over TLS on 192.0.2.10:5061" in pjsip and "over UDP" not in pjsip


def test_the_certificate_is_copied_into_the_instance_once_per_change_and_removed_with_tls(
        tmp_path: Path, pair: CertificateFiles) -> None:
    runtime = _runtime(tmp_path)
    keys = tmp_path / "root/opt/callcenter/unit/tls"
    install_sip_tls_files(_settings(tmp_path, pair), runtime)
    cert, key = keys / "sip-tls.crt", keys / "sip-tls.key"
    assert cert.read_bytes() == pair.cert.read_bytes() and key.read_bytes() == pair.key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = (cert.stat().st_mtime_ns, key.stat().st_mtime_ns, key.stat().st_ino)

    # A render with the same files leaves the copies alone: Asterisk would restart its TLS listener for nothing.
    install_sip_tls_files(_settings(tmp_path, pair), runtime)
    assert (cert.stat().st_mtime_ns, key.stat().st_mtime_ns, key.stat().st_ino) == before

    rotated = self_signed_certificate(tmp_path / "rotated")
    install_sip_tls_files(_settings(tmp_path, rotated), runtime)
    assert cert.read_bytes() == rotated.cert.read_bytes() and key.read_bytes() == rotated.key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert list(keys.glob("*.tmp")) == []

    install_sip_tls_files(_settings(tmp_path, None), runtime)
    assert not cert.exists() and not key.exists()


def test_no_device_may_take_the_name_of_a_transport_or_template(tmp_path: Path, pair: CertificateFiles) -> None:
    from callcenter.devices.services import RESERVED_SIP_NAMES

    sections = _sections(_render(tmp_path, pair)["pjsip.conf"])
    assert {"global", "transport-udp", "transport-tls", "endpoint-common", "auth-common", "aor-common"} <= set(
        sections)
    assert set(sections) <= RESERVED_SIP_NAMES
