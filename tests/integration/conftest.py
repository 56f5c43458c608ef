"""The real stack: Asterisk 22 (rendered config, free ports), the platform process, SIPp phones."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter.asterisk.render import render
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.elders.models import Contact, ContactRole, Elder, LivingSituation
from callcenter.ivr.prompts import install_prompts, prompts_dir
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password, sip_ha1
from tests import harness


@dataclass(frozen=True)
class Seeded:
    elder_id: int
    device_id: int
    device_user: str
    device_password: str
    agent_extension: str
    agent_password: str


DEVICE_USER, DEVICE_PASSWORD = "dev-test-1", "device-secret-1"
# Synthetic; the log scan of the SOS-and-conference run looks for these (test_conference.py).
ELDER_PHONE, DEVICE_PHONE, ELDER_ID_NUMBER = "17700009901", "17700009903", "110101194501010011"
AGENT_EXTENSION, AGENT_PASSWORD = "8101", "agent-phone-secret"


async def seed(db: Database) -> Seeded:
    async with db.transaction() as session:
        elder = Elder(full_name="测试老人", phone=ELDER_PHONE, id_number=ELDER_ID_NUMBER, address="测试社区 1 号",
                      community="测试社区", living_situation=LivingSituation.ALONE, care_level=2)
        elder.contacts = [Contact(role=ContactRole.RELATIVE, name="测试家属", phone="17700009902", priority=1)]
        session.add(elder)
        await session.flush()
        device = Device(elder_id=elder.id, kind=DeviceKind.ONE_TOUCH, sip_username=DEVICE_USER,
                        sip_ha1=sip_ha1(DEVICE_USER, DEVICE_PASSWORD), phone_number=DEVICE_PHONE)
        session.add(device)
        session.add(User(username="agent-test", password_hash=hash_password("agent-panel-pw"), role=Role.AGENT,
                         extension=AGENT_EXTENSION, sip_ha1=sip_ha1(AGENT_EXTENSION, AGENT_PASSWORD)))
        await session.flush()
        return Seeded(elder.id, device.id, DEVICE_USER, DEVICE_PASSWORD, AGENT_EXTENSION, AGENT_PASSWORD)


@pytest.fixture(scope="module")  # parametrised by backend in tests/conftest.py (pytest_generate_tests)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          built_prompts: Path) -> Iterator[harness.Stack]:
    harness.require_tools()
    data_dir = tmp_path_factory.mktemp(f"stack-{request.param}")
    with harness.database_url(request.param, data_dir) as url, running_stack(data_dir, url, built_prompts) as stack:
        yield stack


@contextlib.contextmanager
def running_stack(data_dir: Path, url: str, built_prompts: Path,
                  extra_env: dict[str, str] | None = None) -> Iterator[harness.Stack]:
    """Asterisk, the devices' Mosquitto and the platform process on the database at ``url`` (migrated and seeded
    here), until the block ends."""
    env = {**harness.stack_environment(data_dir, url), **(extra_env or {})}
    settings = Settings.from_env(env)
    harness.migrated_database(settings.database_url)
    runtime = harness.start_asterisk(settings)
    stack = harness.Stack(settings=settings, env=env, runtime=runtime)
    stack.seeded = stack.query(seed)  # type: ignore[attr-defined]
    try:
        shutil.copytree(built_prompts, prompts_dir(settings))
        install_prompts(settings, runtime)
        stack.query(lambda db: render(settings, runtime, db))
        runtime.start()
        harness.enable_dialplan_timings(stack)  # SOS answer→queue times for docs/reliability.md
        stack.mqtt = harness.start_mosquitto(settings)
        stack.start_platform()
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop_platform()
        if stack.mqtt is not None:
            stack.mqtt.stop()
        harness.remove_instance(runtime)


@pytest.fixture
def sipp_dir(tmp_path: Path) -> Path:
    return tmp_path / "sipp"


@pytest.fixture(scope="session")
def built_prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The IVR prompts, synthesised once per test session (espeak-ng + sox), as `callcenter prompts build` does."""
    from callcenter.ivr.flows import load_flows
    from callcenter.ivr.prompts import build_prompts

    out = tmp_path_factory.mktemp("prompts")
    build_prompts(load_flows().prompts, out)
    return out
