"""SIP over TLS with SRTP against a real Asterisk 22 and the platform process, with CC_SIP_TLS_REQUIRED on.

The stack here is this module's own: a certificate made at test time (tests/tls.py) as CC_SIP_TLS_CERT/KEY, and
TLS required of devices and phones. The trunk of the test environment keeps UDP open, which is the harder case:
a device's call over that UDP must still be refused. The devices and phones on TLS are SIPp speaking SIP over TLS
itself (the Asterisk root's SIPp 3.8, tests/harness.py ``tls_sipp_command``), trusting only the certificate made
here: a server certificate that does not chain to it ends the connection.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.calls.models import Call, CallKind, IdentifiedBy
from callcenter.db.session import Database
from tests import harness
from tests.integration.conftest import running_stack
from tests.tls import CertificateFiles, client_context, handshake, self_signed_certificate, sipp_tls

# An SDES key for offers that must be refused: it never protects anything.
REFUSED_CRYPTO = "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xd7JR1AJD9zzZLmbUz+MXoNoA77O71HNJysiq4cA"


@pytest.fixture(scope="module")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return self_signed_certificate(tmp_path_factory.mktemp("sip-tls"))


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory, built_prompts: Path,
              tls_certificate: CertificateFiles) -> Iterator[harness.Stack]:
    harness.require_tools()
    data_dir = tmp_path_factory.mktemp("stack-sip-tls")
    env = {"CC_SIP_TLS_CERT": str(tls_certificate.cert), "CC_SIP_TLS_KEY": str(tls_certificate.key),
           "CC_SIP_TLS_PORT": str(harness.free_tcp_port()), "CC_SIP_TLS_REQUIRED": "1"}
    with harness.database_url("sqlite", data_dir) as url, running_stack(data_dir, url, built_prompts, env) as stack:
        yield stack


@pytest.fixture(scope="module")
def over_tls(tmp_path_factory: pytest.TempPathFactory, tls_certificate: CertificateFiles) -> harness.SippTls:
    """SIPp on TLS trusting the stack's certificate (read at each run: after a rotation, the rotated one)."""
    return sipp_tls(tmp_path_factory.mktemp("sipp-tls"), tls_certificate)


def _calls(stack: harness.Stack, caller_number: str) -> list[Call]:
    async def fetch(db: Database) -> list[Call]:
        async with db.transaction() as session:
            return list((await session.scalars(
                select(Call).where(Call.caller_number == caller_number).order_by(Call.id))).all())

    return stack.query(fetch)  # type: ignore[no-any-return]


def _sos_calls(stack: harness.Stack) -> int:
    async def count(db: Database) -> int:
        async with db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Call).where(Call.kind == CallKind.SOS))
                       or 0)

    return stack.query(count)  # type: ignore[no-any-return]


def _bound_contact(stack: harness.Stack, aor: str) -> str:
    """The contact Asterisk holds for ``aor``, "" when none."""
    shown = stack.runtime.cli(f"pjsip show aor {aor}") or ""
    contact = re.search(r"^\s*contact\s*:[ \t]*(\S*)[ \t]*$", shown, flags=re.M)
    assert contact is not None, shown
    return contact.group(1)


def _answer_sdp(message_log: Path) -> str:
    """The body of the 200 OK to the INVITE in a SIPp message log."""
    text = message_log.read_text(errors="replace")
    answer = re.search(r"SIP/2.0 200 OK\r?\n(?:(?!\r?\n\r?\n).)*?CSeq: 2 INVITE.*?\r?\n\r?\n(v=0.*?)"
                       r"(?:\r?\n\r?\n|-{5}|$)", text, flags=re.S)
    assert answer is not None, text[-3000:]
    return answer.group(1)


def test_asterisk_serves_the_configured_certificate_over_tls_1_2_or_1_3_with_strong_ciphers_only(
        tls_stack: harness.Stack, tls_certificate: CertificateFiles) -> None:
    address = tls_stack.settings.sip_tls
    assert address is not None
    version, presented = handshake(address.host, address.port, client_context(tls_certificate))
    assert version == "TLSv1.3"
    assert presented == tls_certificate.der()

    tls_1_2 = client_context(tls_certificate)
    tls_1_2.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(address.host, address.port, tls_1_2)[0] == "TLSv1.2"

    # An old client: TLS 1.1 at most, any cipher (the client's own OpenSSL allows that only at security level 0).
    old = client_context(tls_certificate)
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():  # deprecated in Python, as they should be; this client is meant to be old
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version, old.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(address.host, address.port, old)

    # A client offering TLS 1.2 with CBC ciphers only (no AEAD, or no forward secrecy) is refused too.
    weak = client_context(tls_certificate)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA:AES256-GCM-SHA384:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(address.host, address.port, weak)


def test_a_device_and_an_agents_phone_register_over_tls(tls_stack: harness.Stack, over_tls: harness.SippTls,
                                                        sipp_dir: Path) -> None:
    seeded = tls_stack.seeded  # type: ignore[attr-defined]
    for user, password in ((seeded.device_user, seeded.device_password),
                           (seeded.agent_extension, seeded.agent_password)):
        messages = sipp_dir / f"register-{user}-messages.log"
        result = harness.sipp(tls_stack, "register", service=user, auth_user=user, password=password,
                              variables={"expires": "120"}, workdir=sipp_dir, tls=over_tls, message_log=messages)
        assert result.ok, result.output
        # The registrar's answer lists the binding it stored: rewrite_contact made it the TLS connection the device
        # registered on, so calls to it go over TLS.
        answer = re.search(r"SIP/2.0 200 OK\r?\n(?:(?!\r?\n\r?\n).)*?CSeq: 2 REGISTER(?:(?!\r?\n\r?\n).)*",
                           messages.read_text(errors="replace"), flags=re.S)
        assert answer is not None, messages.read_text(errors="replace")
        assert re.search(rf"^Contact: <sip:{user}@127\.0\.0\.1:\d+;transport=TLS>", answer.group(0), flags=re.M), \
            answer.group(0)
        # Asterisk drops a binding when its TLS connection closes (SIPp leaves at once): a device must keep its
        # connection open to be called back (docs/security.md).
        harness.eventually(lambda name=user: _bound_contact(tls_stack, name) == "",
                           what=f"{user}'s binding gone with its connection")


def test_an_sos_over_tls_is_answered_with_srtp_and_reaches_the_platform_as_the_elders_sos(
        tls_stack: harness.Stack, over_tls: harness.SippTls, sipp_dir: Path) -> None:
    seeded = tls_stack.seeded  # type: ignore[attr-defined]
    messages = sipp_dir / "sos-over-tls-messages.log"
    result = harness.sipp(tls_stack, "call_srtp", service="sos", auth_user=seeded.device_user,
                          password=seeded.device_password, variables={"user": seeded.device_user, "hold_ms": "1500"},
                          workdir=sipp_dir, tls=over_tls, message_log=messages)
    assert result.ok, result.output + tls_stack.platform_output()
    answer = _answer_sdp(messages)
    assert re.search(r"^m=audio \d+ RTP/SAVP ", answer, flags=re.M), answer
    crypto = re.findall(r"^a=crypto:\d+ (AES_CM_128_HMAC_SHA1_(?:80|32)) inline:([A-Za-z0-9+/]{40})", answer,
                        flags=re.M)
    assert crypto, answer
    assert all(key != "xd7JR1AJD9zzZLmbUz+MXoNoA77O71HNJysiq4cA" for _, key in crypto)  # Asterisk's own key

    call = harness.eventually(
        lambda: next((c for c in _calls(tls_stack, "17700009903") if c.ended_at is not None), None),
        what="the SOS over TLS in the call log")
    assert call.kind is CallKind.SOS
    assert call.identified_by is IdentifiedBy.DEVICE and call.device_id == seeded.device_id
    assert call.elder_id == seeded.elder_id


@pytest.mark.parametrize(("offer", "refusal"), [
    ({"profile": "SAVP", "attribute": REFUSED_CRYPTO}, "403"),  # SRTP, but its key crossed UDP: the dialplan
    ({"profile": "AVP", "attribute": "ptime:20"}, "488"),  # plain RTP: Asterisk's media negotiation
])
def test_with_tls_required_a_call_from_the_same_device_over_udp_is_refused(
        tls_stack: harness.Stack, sipp_dir: Path, offer: dict[str, str], refusal: str) -> None:
    seeded = tls_stack.seeded  # type: ignore[attr-defined]
    sos_before = _sos_calls(tls_stack)
    messages = sipp_dir / f"udp-{offer['profile']}-messages.log"
    result = harness.sipp(tls_stack, "call_refused", service="sos", auth_user=seeded.device_user,
                          password=seeded.device_password,
                          variables={"user": seeded.device_user, **offer}, workdir=sipp_dir, timeout=10,
                          message_log=messages)
    assert result.ok, result.output
    assert re.search(rf"^SIP/2.0 {refusal} ", messages.read_text(errors="replace"), flags=re.M)
    if refusal == "403":  # the dialplan's refusal tells the operator which device is still on UDP
        log = tls_stack.runtime.log_file.read_text(errors="replace")
        assert f"Refused a call of {seeded.device_user} not made over TLS" in log
        assert "Unknown or unavailable item" not in log  # every CHANNEL() item cc-tls-only reads exists
    # Refused before the dialplan's SOS: once Asterisk holds no channel, none can still reach the SOS intake, and
    # none did. (The platform may log the refused attempt as a plain call, with no elder: nothing to call back.)
    harness.eventually(lambda: re.search(r"^0 active channels", tls_stack.runtime.cli("core show channels count")
                                         or "", flags=re.M), what="the refused call gone from Asterisk")
    assert _sos_calls(tls_stack) == sos_before, tls_stack.platform_output()


def test_a_rotated_certificate_is_served_after_a_render_and_reload(tls_stack: harness.Stack,
                                                                   tls_certificate: CertificateFiles,
                                                                   over_tls: harness.SippTls,
                                                                   sipp_dir: Path) -> None:
    address = tls_stack.settings.sip_tls
    assert address is not None
    previous = tls_certificate.der()
    stale = sipp_dir.parent / "previous.crt"
    stale.write_bytes(tls_certificate.cert.read_bytes())
    # The operator replaces the files CC_SIP_TLS_CERT/KEY name, then `callcenter asterisk render` and `reload`.
    rotated = self_signed_certificate(tls_certificate.cert.parent, name=tls_certificate.cert.stem)
    assert rotated == tls_certificate and rotated.der() != previous
    tls_stack.render_and_reload()
    harness.eventually(lambda: handshake(address.host, address.port, client_context(rotated))[1] == rotated.der(),
                       what="Asterisk presenting the new certificate")
    # A device trusting only the new certificate registers; one still trusting only the old one no longer connects.
    seeded = tls_stack.seeded  # type: ignore[attr-defined]
    trusting_new = dataclasses.replace(over_tls, trusted=rotated.cert)
    trusting_old = dataclasses.replace(over_tls, trusted=stale)
    for trusting, registers in ((trusting_new, True), (trusting_old, False)):
        result = harness.sipp(tls_stack, "register", service=seeded.device_user, auth_user=seeded.device_user,
                              password=seeded.device_password, variables={"expires": "120"}, workdir=sipp_dir,
                              tls=trusting, timeout=5)
        assert result.ok is registers, result.output
        assert registers or "TLS verification error" in result.output, result.output  # refused by SIPp's check


def test_with_tls_optional_udp_keeps_working_beside_tls_and_an_agent_on_udp_answers_the_sos(
        tls_stack: harness.Stack, over_tls: harness.SippTls, sipp_dir: Path) -> None:
    """The same Asterisk re-rendered with CC_SIP_TLS_REQUIRED=0, as an operator turning the requirement off: a
    device on a trusted LAN calls over UDP with plain RTP, one elsewhere over TLS with SRTP, and an agent's phone
    registered over UDP is called over UDP (no transport is pinned: each phone is called over the one it chose)."""
    seeded = tls_stack.seeded  # type: ignore[attr-defined]
    required = tls_stack.settings
    tls_stack.settings = required.replace(sip_tls_required=False)
    agent = harness.Phone(tls_stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    token = tls_stack.token("agent-test", "agent-panel-pw")
    try:
        tls_stack.render_and_reload()
        agent.register()
        status, state = tls_stack.api("POST", "/api/v1/agents/agent-test/login", token=token)
        assert status == 200 and state["status"] == "available", state
        agent.answer("answer_until_bye", ring_ms=300)
        over_udp = harness.sipp(tls_stack, "call", service="sos", auth_user=seeded.device_user,
                                password=seeded.device_password,
                                variables={"user": seeded.device_user, "hold_ms": "2000"}, workdir=sipp_dir)
        assert over_udp.ok, over_udp.output + tls_stack.platform_output()
        assert agent.wait(20).ok

        over_tls = harness.sipp(tls_stack, "call_srtp", service="sos", auth_user=seeded.device_user,
                                password=seeded.device_password,
                                variables={"user": seeded.device_user, "hold_ms": "500"}, workdir=sipp_dir,
                                tls=over_tls)
        assert over_tls.ok, over_tls.output + tls_stack.platform_output()
    finally:
        agent.stop()
        tls_stack.api("POST", "/api/v1/agents/agent-test/logout", token=token)
        tls_stack.settings = required
        tls_stack.render_and_reload()
