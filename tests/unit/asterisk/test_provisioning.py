"""A device added while AMI is down is applied to Asterisk as soon as the link is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcenter.asterisk.provisioning import AsteriskProvisioner
from callcenter.db.session import Database
from callcenter.telephony.ami import AmiClient, AmiNotConnected
from tests.apiclient import api_settings
from tests.harness import free_tcp_port
from tests.unit.telephony.test_ami import SECRET, USERNAME, FakeAsterisk, eventually, success


async def test_pending_provisioning_is_retried_at_the_next_ami_login(db: Database, tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    peer = FakeAsterisk()
    peer.port = free_tcp_port()
    peer.replies["reload"] = success(Message="Module Reloaded")
    ami = AmiClient("127.0.0.1", peer.port, USERNAME, SECRET, reconnect_delay=1, heartbeat_interval=30.0)
    provisioner = AsteriskProvisioner(settings, db, ami)
    try:
        async with asyncio.timeout(10):
            await ami.start()
            with pytest.raises(AmiNotConnected):
                await provisioner.apply()
            assert provisioner.pending
            rendered = settings.asterisk_root / "opt/callcenter" / settings.asterisk_instance / "etc/pjsip.conf"
            assert rendered.exists()  # the files are written even while AMI is down
            await peer.start(peer.port)
            await eventually(lambda: peer.count("Reload") == 1, timeout=6)
            await eventually(lambda: not provisioner.pending)
    finally:
        await ami.stop()
        await peer.stop()
