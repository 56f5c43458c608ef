"""docker-compose.yml agrees with the platform's defaults (Settings.from_env) and keeps AMI/AGI private."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import PROJECT_ROOT, Settings

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
SERVICES = ("postgres", "s3", "asterisk", "platform")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def defaults() -> Settings:
    return Settings.from_env({})


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


def environment(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whether written as a mapping or as KEY=VALUE lines."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def interpolated(env: dict[str, str]) -> dict[str, str]:
    """The environment as compose would pass it with no variables set: defaults applied, required ones filled."""

    def value(match: re.Match[str]) -> str:
        return match["arg"] if match["op"] in {"-", ":-"} else f"<{match['name']}>"

    return {key: REFERENCE.sub(value, raw) for key, raw in env.items()}


def port_specs(svc: dict[str, Any]) -> list[str]:
    """Short-syntax port specs with the protocol made explicit ("8080:8080" -> "8080:8080/tcp")."""
    specs = [str(spec) for spec in svc.get("ports", [])]
    return [spec if "/" in spec else f"{spec}/tcp" for spec in specs]


def ports_in(spec: str) -> set[int]:
    """Every port number a spec or an ``expose`` entry mentions, host side and container side."""
    numbers: set[int] = set()
    for part in spec.split("/")[0].split(":"):
        if re.fullmatch(r"\d+(-\d+)?", part):
            first, _, last = part.partition("-")
            numbers.update(range(int(first), int(last or first) + 1))
    return numbers


def test_the_four_services_exist(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])


def test_asterisk_publishes_sip_http_and_rtp(compose: dict[str, Any], defaults: Settings) -> None:
    published = port_specs(service(compose, "asterisk"))
    sip, http = defaults.sip.port, defaults.http.port
    rtp = f"{defaults.rtp_start}-{defaults.rtp_end}"
    assert f"{sip}:{sip}/udp" in published
    assert f"{http}:{http}/tcp" in published
    assert f"{rtp}:{rtp}/udp" in published


def test_ami_and_agi_are_published_by_no_service(compose: dict[str, Any], defaults: Settings) -> None:
    private = {defaults.ami.port, defaults.agi.port}
    for name, svc in compose["services"].items():
        for spec in port_specs(svc) + [str(entry) for entry in svc.get("expose", [])]:
            assert not ports_in(spec) & private, f"{name} publishes {spec}"


def test_platform_shares_the_asterisk_network_namespace(compose: dict[str, Any]) -> None:
    platform = service(compose, "platform")
    assert platform["network_mode"] == "service:asterisk"
    assert "ports" not in platform


def test_platform_environment_matches_the_defaults(compose: dict[str, Any], defaults: Settings) -> None:
    env = environment(service(compose, "platform"))
    assert env["CC_HTTP_PORT"] == str(defaults.http.port)
    assert env["CC_AMI_PORT"] == f"127.0.0.1:{defaults.ami.port}"
    assert env["CC_AGI_PORT"] == f"127.0.0.1:{defaults.agi.port}"

    settings = Settings.from_env(interpolated(env))
    assert settings.http.port == defaults.http.port
    assert settings.sip.port == defaults.sip.port
    assert (settings.rtp_start, settings.rtp_end) == (defaults.rtp_start, defaults.rtp_end)
    assert str(settings.ami) == f"127.0.0.1:{defaults.ami.port}"
    assert str(settings.agi) == f"127.0.0.1:{defaults.agi.port}"
    assert settings.database_url.startswith("postgresql+asyncpg://")
    # Recordings go to the compose file's own S3 service, with credentials for boto3's chain (not CC_* names).
    assert settings.recording_storage == "s3" and settings.s3 is not None
    assert settings.s3.endpoint_url == "http://s3:9000" and settings.s3.bucket == "callcenter-recordings"
    assert REFERENCE.fullmatch(env["AWS_ACCESS_KEY_ID"]) and REFERENCE.fullmatch(env["AWS_SECRET_ACCESS_KEY"])


def test_platform_healthcheck_hits_healthz_on_the_http_port(compose: dict[str, Any], defaults: Settings) -> None:
    test = " ".join(service(compose, "platform")["healthcheck"]["test"])
    assert f"http://127.0.0.1:{defaults.http.port}/healthz" in test


def test_asterisk_reads_the_configuration_the_platform_renders(compose: dict[str, Any]) -> None:
    env = environment(service(compose, "platform"))
    settings = Settings.from_env(interpolated(env))
    rendered = AsteriskRuntime(None, settings.asterisk_instance, Path(env["CC_DATA_DIR"]) / "asterisk").config_file
    assert environment(service(compose, "asterisk"))["ASTERISK_CONF"] == str(rendered)
    for name in ("asterisk", "platform"):
        targets = [str(volume).split(":")[1] for volume in service(compose, name)["volumes"]]
        assert env["CC_DATA_DIR"] in targets, f"{name} does not mount the shared data volume"
        assert env["CC_RECORDINGS_DIR"] in targets, f"{name} does not mount the recordings volume"


def test_postgres_is_healthy_before_the_platform_starts(compose: dict[str, Any]) -> None:
    depends_on = service(compose, "platform")["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(service(compose, "postgres")["healthcheck"]["test"])


def test_build_files_exist(compose: dict[str, Any]) -> None:
    builds = [svc["build"] for svc in compose["services"].values() if "build" in svc]
    assert builds
    for build in builds:
        context = COMPOSE_FILE.parent / build["context"]
        assert context.is_dir(), f"build context {build['context']} is missing"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{dockerfile} is missing"


def test_passwords_and_secrets_are_variable_references(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for key, value in environment(svc).items():
            if "PASSWORD" in key.upper() or "SECRET" in key.upper():
                assert REFERENCE.fullmatch(value), f"{name}: {key} holds a literal value"
        database_url = environment(svc).get("CC_DATABASE_URL")
        if database_url:
            password = database_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
            assert REFERENCE.fullmatch(password), f"{name}: CC_DATABASE_URL holds a literal password"
