"""The console command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUBCOMMANDS = [
    [], ["serve"], ["db"], ["db", "upgrade"], ["asterisk"], ["asterisk", "install"], ["asterisk", "render"],
    ["asterisk", "start"], ["asterisk", "stop"], ["asterisk", "status"], ["asterisk", "reload"], ["demo"],
    ["demo", "seed"], ["prompts"], ["prompts", "build"], ["retention"], ["retention", "run"], ["audit"],
    ["audit", "verify"], ["mqtt"], ["mqtt", "start"], ["mqtt", "stop"], ["mqtt", "status"],
]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: " ".join(a) or "callcenter")
def test_every_command_has_help(args: list[str]) -> None:
    result = _run([*args, "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage: callcenter" in result.stdout


def test_a_bad_setting_is_a_clear_error() -> None:
    result = _run(["db", "upgrade"], {"CC_HTTP_PORT": "eighty"})
    assert result.returncode == 2
    assert "CC_HTTP_PORT" in result.stderr


def test_db_upgrade_then_demo_seed_is_idempotent(tmp_path: Path) -> None:
    env = {"CC_DATA_DIR": str(tmp_path), "CC_ADMIN_PASSWORD": "admin-password-1"}
    assert _run(["db", "upgrade"], env).returncode == 0
    first = _run(["demo", "seed"], env)
    assert first.returncode == 0, first.stderr
    assert "admin / admin-password-1" in first.stdout
    assert "provider provider01: panel password" in first.stdout  # the provider portal's demo account
    credentials = tmp_path / "demo-credentials.txt"
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    second = _run(["demo", "seed"], env)
    assert second.returncode == 0
    assert "already present" in second.stdout
    assert credentials.read_text().count("device demo-1001") == 1


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    from tests.harness import free_tcp_port

    result = _run(["serve"], {"CC_DATA_DIR": str(tmp_path), "CC_HTTP_PORT": str(free_tcp_port()),
                              "CC_AGI_PORT": str(free_tcp_port()), "CC_AMI_PORT": str(free_tcp_port())})
    assert result.returncode == 2
    assert "callcenter db upgrade" in result.stderr


def test_serve_refuses_a_broken_ivr_flow_naming_file_and_node(tmp_path: Path) -> None:
    import shutil

    from callcenter.config import PROJECT_ROOT
    from tests.harness import free_tcp_port

    flows = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "ivr_flows", flows)
    hotline = flows / "hotline.yaml"
    hotline.write_text(hotline.read_text().replace("node: services", "node: nowhere", 1))
    env = {"CC_DATA_DIR": str(tmp_path / "data"), "CC_IVR_FLOWS_DIR": str(flows),
           "CC_HTTP_PORT": str(free_tcp_port()), "CC_AGI_PORT": str(free_tcp_port()),
           "CC_AMI_PORT": str(free_tcp_port())}
    assert _run(["db", "upgrade"], env).returncode == 0
    result = _run(["serve"], env)
    assert result.returncode == 2
    assert "hotline.yaml" in result.stderr and "nowhere" in result.stderr and "main" in result.stderr


def test_what_the_platform_writes_is_readable_by_its_user_only(tmp_path: Path) -> None:
    """The database, the demo credentials and the secrets the commands create are 0600, their folders 0700
    (the umask the console command sets), whatever the operator's own umask."""
    env = {"CC_DATA_DIR": str(tmp_path / "data"), "CC_ADMIN_PASSWORD": "admin-password-1"}
    assert _run(["db", "upgrade"], env).returncode == 0
    assert _run(["demo", "seed"], env).returncode == 0
    data = tmp_path / "data"
    database = data / "callcenter.sqlite3"
    for path in (database, data / "demo-credentials.txt"):
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    for folder in (path for path in data.rglob("*") if path.is_dir()):
        assert folder.stat().st_mode & 0o077 == 0, folder


def test_a_weak_first_admin_password_is_refused_naming_the_variable(tmp_path: Path) -> None:
    env = {"CC_DATA_DIR": str(tmp_path / "data"), "CC_ADMIN_PASSWORD": "admin123456"}
    assert _run(["db", "upgrade"], env).returncode == 0
    result = _run(["demo", "seed"], env)
    assert result.returncode == 2 and "CC_ADMIN_PASSWORD" in result.stderr, result.stderr
    assert not (tmp_path / "data" / "demo-credentials.txt").exists()  # nothing half-written


def test_mqtt_start_runs_the_managed_broker_and_says_so_when_mqtt_is_off(tmp_path: Path) -> None:
    from tests.harness import free_tcp_port

    port = free_tcp_port()
    env = {"CC_DATA_DIR": str(tmp_path), "CC_MQTT_BIND": f"127.0.0.1:{port}"}
    started = _run(["mqtt", "start"], env)
    try:
        assert started.returncode == 0, started.stderr
        assert f"MQTT on 127.0.0.1:{port}" in started.stdout
        again = _run(["mqtt", "start"], env)  # as make run does every time: a running broker is reloaded
        assert again.returncode == 0 and "reloaded" in again.stdout, again.stdout
        status = _run(["mqtt", "status"], env)
        assert status.returncode == 0 and "running" in status.stdout
        assert oct((tmp_path / "mosquitto").stat().st_mode & 0o777) == "0o700"
    finally:
        stopped = _run(["mqtt", "stop"], env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert _run(["mqtt", "status"], env).returncode == 3
    off = _run(["mqtt", "start"], {"CC_DATA_DIR": str(tmp_path), "CC_MQTT_URL": "off"})
    assert off.returncode == 0 and off.stdout.startswith("MQTT off: CC_MQTT_URL=off"), off.stdout
