"""FastAGI serves only the Asterisk host: a connection from another address is closed unserved and logged.

Real sockets on loopback: the server listens on 127.0.0.1, and the refused client connects to it *from* 127.0.0.2
(Linux routes all of 127.0.0.0/8 to the loopback interface, so the server sees that source address). With the
default allow-list (loopback: 127.0.0.1 and ::1) that peer is a stranger; configured in CC_AGI_ALLOWED_PEERS it is
served like Asterisk.
"""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from callcenter.config import Settings
from callcenter.telephony.fastagi import AgiChannel, AgiRequest, FastAgiServer, peer_allowed
from tests.unit.telephony.test_fastagi import TEST_TIMEOUT, FakeAsterisk

pytestmark = pytest.mark.timeout(15)


async def _request_from(source: str, port: int, script: str = "sos") -> FakeAsterisk:
    """An AGI request as Asterisk sends it, from a socket bound to ``source``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    side = FakeAsterisk(reader, writer)
    env = {"agi_network": "yes", "agi_network_script": script, "agi_channel": "PJSIP/dev-1-00000001",
           "agi_uniqueid": "1700000000.1", "agi_arg_1": "dev-1"}
    await side.send_raw("".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n")
    return side


async def _server(peers_setting: str | None) -> tuple[FastAgiServer, list[AgiRequest]]:
    served: list[AgiRequest] = []

    async def sos(request: AgiRequest, _channel: AgiChannel) -> None:
        served.append(request)

    env = {} if peers_setting is None else {"CC_AGI_ALLOWED_PEERS": peers_setting}
    server = FastAgiServer("127.0.0.1", 0, {"sos": sos}, allowed_peers=Settings.from_env(env).agi_allowed_peers)
    await server.start()
    return server, served


async def test_a_peer_outside_the_default_allow_list_is_closed_unserved_and_logged() -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server, served = await _server(None)
        try:
            with capture_logs() as logs:
                stranger = await _request_from("127.0.0.2", server.port)
                # Not a byte back (no SET VARIABLE CC_AGI_RESULT, no command): just the close (a reset, as the
                # request it sent was never read).
                assert await stranger.closed_by_server()
                await stranger.close()
                asterisk = await _request_from("127.0.0.1", server.port)
                assert await asterisk.converse() == ['SET VARIABLE CC_AGI_RESULT "ok"']
                await asterisk.close()
        finally:
            await server.stop()
    assert [request.args for request in served] == [("dev-1",)]  # only Asterisk's request ran the handler
    refused = [entry for entry in logs if entry["event"] == "fastagi.peer_refused"]
    assert [entry["peer"] for entry in refused] == ["127.0.0.2"] and refused[0]["log_level"] == "warning"


async def test_the_configured_asterisk_host_is_served() -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        server, served = await _server("127.0.0.2, 10.0.0.0/8")
        try:
            side = await _request_from("127.0.0.2", server.port)
            assert await side.converse() == ['SET VARIABLE CC_AGI_RESULT "ok"']
            await side.close()
            local = await _request_from("127.0.0.1", server.port)  # loopback is no longer on the list
            assert await local.closed_by_server()
            await local.close()
        finally:
            await server.stop()
    assert len(served) == 1


def test_peer_addresses_are_judged_as_ip_addresses() -> None:
    loopback = Settings.from_env({}).agi_allowed_peers
    assert peer_allowed(("127.0.0.1", 40000), loopback)
    assert peer_allowed(("::1", 40000, 0, 0), loopback)
    assert peer_allowed(("::ffff:127.0.0.1", 40000, 0, 0), loopback)  # IPv4 on a dual-stack socket
    assert not peer_allowed(("127.0.0.2", 40000), loopback)
    assert not peer_allowed(("192.0.2.7", 40000), loopback)
    assert not peer_allowed(None, loopback) and not peer_allowed(("not-an-ip", 1), loopback)
    assert peer_allowed(("192.0.2.7", 40000), None)  # a server built without a list (tests) serves anyone


def test_the_allow_list_setting_is_validated() -> None:
    from callcenter.config import ConfigError

    with pytest.raises(ConfigError, match=r"CC_AGI_ALLOWED_PEERS.*not an address or network"):
        Settings.from_env({"CC_AGI_ALLOWED_PEERS": "asterisk.local"})
