"""Settings read from ``CC_*`` environment variables.

Settings are an immutable value passed to every component that needs it; nothing reads the environment
after start-up, so tests can run several differently configured platforms side by side.
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A ``CC_*`` variable has a value the platform cannot use; the message names the variable."""


@dataclasses.dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _host_port(name: str, raw: str) -> HostPort:
    host, sep, port = raw.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{name}={raw!r}: expected HOST:PORT")
    return HostPort(host, _port(name, port))


def _port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={raw!r}: port out of range 1-65535")
    return port


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def _int_between(name: str, raw: str, minimum: int, maximum: int) -> int:
    value = _int(name, raw, minimum)
    if value > maximum:
        raise ConfigError(f"{name}={raw!r}: must be at most {maximum}")
    return value


def normalise_database_url(url: str) -> str:
    """Map a plain ``postgresql://`` or ``sqlite://`` URL onto the async drivers the platform uses."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ConfigError(f"CC_DATABASE_URL={url!r}: use a postgresql:// or sqlite:// URL")


def default_asterisk_root() -> Path:
    """Where the private Debian sid root with Asterisk lives: outside the clone so every clone reuses it."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "callcenter" / "asterisk-sid"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    http: HostPort
    sip: HostPort
    ami: HostPort
    agi: HostPort
    rtp_start: int
    rtp_end: int
    recordings_dir: Path
    ivr_flows_dir: Path
    admin_password: str | None
    api_token_ttl: int
    # Seconds a signed provider report's timestamp may be off the server's clock (providers.reporting).
    provider_api_max_skew: int
    cookie_secure: bool
    asterisk_root: Path
    asterisk_instance: str
    emergency_number: str
    trunk_uri: str
    centre_number: str
    centre_name: str
    log_level: str
    # The centre's local time zone: where "today" begins and ends on the wallboard (an IANA name).
    timezone: str
    sip_qualify_seconds: int
    device_rtp_timeout: int
    sos_answer_timeout: int
    sos_overflow_timeout: int
    sos_fallback_dial: str
    call_log_retention_days: int
    # What retention does with a call log past its retention: "archive" (a compressed file, then out of the
    # database) or "purge" (out of the database).
    call_log_expiry: str
    recording_retention_days: int
    recording_scan_seconds: int
    record_queues: frozenset[str]
    wrapup_seconds: int
    # How often the supervision-case scanner looks for orders near or past their deadline, repeated complaints
    # and dissatisfied results (callcenter.supervision_cases).
    escalation_scan_seconds: int
    # Where new recordings are stored: "local" (CC_RECORDINGS_DIR) or "s3"; s3 is set whenever CC_S3_BUCKET is,
    # so recordings stored there still play after a switch back to local.
    recording_storage: str = "local"
    s3: S3Settings | None = None
    # How long SOS intake may take before the call goes to the emergency queue without it (the AMI safety net and
    # the journal catch up on what it did not write).
    sos_intake_seconds: int = 3
    # Log-in attempts a minute from one source address (users.login_guard), and password checks at once.
    login_attempts_per_minute: int = 60
    login_hash_concurrency: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("CC_DATA_DIR", str(PROJECT_ROOT / "var"))).resolve()
        database_url = normalise_database_url(
            env.get("CC_DATABASE_URL", f"sqlite:///{data_dir / 'callcenter.sqlite3'}")
        )
        rtp_start = _port("CC_RTP_START", env.get("CC_RTP_START", "10000"))
        rtp_end = _port("CC_RTP_END", env.get("CC_RTP_END", "10999"))
        if rtp_end - rtp_start < 10:
            raise ConfigError("CC_RTP_START/CC_RTP_END: the range must hold at least 10 ports")
        emergency = env.get("CC_EMERGENCY_NUMBER", "120")
        if not emergency.isdigit():
            raise ConfigError(f"CC_EMERGENCY_NUMBER={emergency!r}: digits only")
        level = env.get("CC_LOG_LEVEL", "info").lower()
        if level not in {"debug", "info", "warning", "error"}:
            raise ConfigError(f"CC_LOG_LEVEL={level!r}: one of debug, info, warning, error")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            http=HostPort(env.get("CC_HTTP_HOST", "127.0.0.1"), _port("CC_HTTP_PORT", env.get("CC_HTTP_PORT", "8080"))),
            sip=_host_port("CC_SIP_BIND", env.get("CC_SIP_BIND", "127.0.0.1:5060")),
            ami=_loopback_service(env, "CC_AMI", 5038),
            agi=_loopback_service(env, "CC_AGI", 4573),
            rtp_start=rtp_start,
            rtp_end=rtp_end,
            recordings_dir=Path(env.get("CC_RECORDINGS_DIR", str(PROJECT_ROOT / "recordings"))).resolve(),
            ivr_flows_dir=Path(env.get("CC_IVR_FLOWS_DIR", str(PROJECT_ROOT / "ivr_flows"))).resolve(),
            admin_password=env.get("CC_ADMIN_PASSWORD") or None,
            # REST API bearer tokens live one shift (12 h) by default; at most a week, at least a minute.
            api_token_ttl=_int_between("CC_API_TOKEN_TTL", env.get("CC_API_TOKEN_TTL", "43200"), 60, 7 * 24 * 3600),
            provider_api_max_skew=_int_between("CC_PROVIDER_API_MAX_SKEW",
                                               env.get("CC_PROVIDER_API_MAX_SKEW", "300"), 30, 3600),
            # Behind TLS (a reverse proxy) the panel's session cookie must carry Secure; plain HTTP on a
            # single machine (make run) cannot, or the browser would never send it back.
            cookie_secure=_flag("CC_COOKIE_SECURE", env.get("CC_COOKIE_SECURE", "0")),
            asterisk_root=Path(env.get("CC_ASTERISK_ROOT", str(default_asterisk_root()))),
            asterisk_instance=_instance_name(env.get("CC_ASTERISK_INSTANCE", "main")),
            emergency_number=emergency,
            # External numbers (120, doctors, relatives, social workers) are dialled through this SIP trunk.
            trunk_uri=_trunk_uri(env.get("CC_TRUNK_URI", "")),
            centre_number=_digits("CC_CENTRE_NUMBER", env.get("CC_CENTRE_NUMBER", "12349")),
            centre_name=_caller_name(env.get("CC_CENTRE_NAME", "养老服务中心")),
            log_level=level,
            timezone=_timezone(env.get("CC_TIMEZONE", "Asia/Shanghai")),
            # OPTIONS pings to registered phones: a phone that stops answering is marked unreachable.
            sip_qualify_seconds=_int("CC_SIP_QUALIFY_SECONDS", env.get("CC_SIP_QUALIFY_SECONDS", "30"), 0),
            # A device whose audio stops for this long is a dead line: Asterisk hangs up, and an unanswered SOS
            # becomes an abandoned SOS that is called back. 0 turns it off (devices that suppress silence).
            device_rtp_timeout=_int("CC_DEVICE_RTP_TIMEOUT", env.get("CC_DEVICE_RTP_TIMEOUT", "60"), 0),
            # GB/T 33358: answer within 15 s. Past it the SOS overflows to supervisors, then to the fallback.
            sos_answer_timeout=_int("CC_SOS_ANSWER_TIMEOUT", env.get("CC_SOS_ANSWER_TIMEOUT", "15"), 5),
            sos_overflow_timeout=_int("CC_SOS_OVERFLOW_TIMEOUT", env.get("CC_SOS_OVERFLOW_TIMEOUT", "20"), 5),
            sos_fallback_dial=_dial_string(env.get("CC_SOS_FALLBACK_DIAL", "")),
            # Seed 5.10: call records at least 3 years, recordings at least 3 months.
            call_log_retention_days=_int("CC_CALL_LOG_RETENTION_DAYS", env.get("CC_CALL_LOG_RETENTION_DAYS", "1095"),
                                         MIN_CALL_LOG_RETENTION_DAYS),
            call_log_expiry=_call_log_expiry(env.get("CC_CALL_LOG_EXPIRY", "archive")),
            recording_retention_days=_int("CC_RECORDING_RETENTION_DAYS",
                                          env.get("CC_RECORDING_RETENTION_DAYS", "92"), MIN_RECORDING_RETENTION_DAYS),
            # How often the recording pipeline rescans the spool: retries, and files of calls that ended unseen.
            recording_scan_seconds=_int_between("CC_RECORDING_SCAN_SECONDS",
                                                env.get("CC_RECORDING_SCAN_SECONDS", "30"), 1, 3600),
            # The queues whose answered calls are recorded from the moment an agent picks up (SOS calls are
            # always recorded from their first second, whatever this says).
            record_queues=_queues("CC_RECORD_QUEUES", env.get("CC_RECORD_QUEUES", "emergency,hotline")),
            # After-call work: an agent whose queue call ends takes no hotline call for this long (SOS calls still
            # reach them) unless they press "ready"; 0 turns wrap-up off.
            wrapup_seconds=_int_between("CC_WRAPUP_SECONDS", env.get("CC_WRAPUP_SECONDS", "30"), 0, 600),
            escalation_scan_seconds=_int_between("CC_ESCALATION_SCAN_SECONDS",
                                                 env.get("CC_ESCALATION_SCAN_SECONDS", "60"), 1, 3600),
            recording_storage=_recording_storage(env),
            s3=_s3_settings(env),
            sos_intake_seconds=_int_between("CC_SOS_INTAKE_SECONDS", env.get("CC_SOS_INTAKE_SECONDS", "3"), 1, 10),
            # A shift logging in at 08:00 behind one office address fits; a guesser gets one try a second at most.
            login_attempts_per_minute=_int_between("CC_LOGIN_ATTEMPTS_PER_MINUTE",
                                                   env.get("CC_LOGIN_ATTEMPTS_PER_MINUTE", "60"), 5, 10_000),
            # Argon2 takes a core for ~130 ms: one at a time leaves the other core to calls (2-core machines).
            login_hash_concurrency=_int_between("CC_LOGIN_HASH_CONCURRENCY",
                                                env.get("CC_LOGIN_HASH_CONCURRENCY", "1"), 1, 64),
        )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True, slots=True)
class S3Settings:
    """The S3 bucket recordings go to. Credentials are not settings: boto3's own chain finds them
    (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role, …)."""

    bucket: str
    prefix: str  # "" or ending in "/"
    region: str | None
    endpoint_url: str | None  # an S3-compatible server (MinIO, …); None is AWS


RECORDING_BACKENDS = ("local", "s3")
# Names an operator might reach for that the platform does not read: say which one it does read.
_S3_MISNAMED = {
    "CC_S3_ENDPOINT": "set CC_S3_ENDPOINT_URL instead",
    "CC_S3_ACCESS_KEY": "credentials come from boto3's chain: set AWS_ACCESS_KEY_ID instead",
    "CC_S3_SECRET_KEY": "credentials come from boto3's chain: set AWS_SECRET_ACCESS_KEY instead",
}


def _recording_storage(env: Mapping[str, str]) -> str:
    raw = env.get("CC_RECORDING_STORAGE", "local")
    storage = raw.strip().lower()
    if storage not in RECORDING_BACKENDS:
        raise ConfigError(f"CC_RECORDING_STORAGE={raw!r}: one of {', '.join(RECORDING_BACKENDS)}")
    if storage == "s3" and not env.get("CC_S3_BUCKET", "").strip():
        raise ConfigError("CC_RECORDING_STORAGE=s3 needs CC_S3_BUCKET: the bucket recordings are kept in")
    return storage


def _s3_settings(env: Mapping[str, str]) -> S3Settings | None:
    for name, hint in _S3_MISNAMED.items():
        if env.get(name):
            raise ConfigError(f"{name} is not read: {hint}")
    bucket = env.get("CC_S3_BUCKET", "").strip()
    if not bucket:
        stray = [name for name in ("CC_S3_PREFIX", "CC_S3_REGION", "CC_S3_ENDPOINT_URL") if env.get(name)]
        if stray:
            raise ConfigError(f"{', '.join(stray)} set without CC_S3_BUCKET: name the bucket, or unset them")
        return None
    # S3's bucket naming rules: 3-63 lower-case letters, digits, '.' and '-', starting and ending alphanumeric.
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) or ".." in bucket:
        raise ConfigError(f"CC_S3_BUCKET={bucket!r}: 3-63 lower-case letters, digits, '.' and '-'")
    raw_prefix = env.get("CC_S3_PREFIX", "recordings/")
    prefix = raw_prefix.strip().strip("/")
    if prefix and not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*", prefix):
        raise ConfigError(f"CC_S3_PREFIX={raw_prefix!r}: '/'-separated names of letters, digits, '.', '_' and '-'")
    region = env.get("CC_S3_REGION", "").strip() or None
    if region is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", region):
        raise ConfigError(f"CC_S3_REGION={region!r}: a region name such as eu-central-1")
    return S3Settings(bucket=bucket, prefix=f"{prefix}/" if prefix else "", region=region,
                      endpoint_url=_endpoint_url(env.get("CC_S3_ENDPOINT_URL", "").strip()))


def _endpoint_url(raw: str) -> str | None:
    if not raw:
        return None
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"CC_S3_ENDPOINT_URL={raw!r}: expected http(s)://host[:port]")
    if parts.username or parts.password:
        raise ConfigError("CC_S3_ENDPOINT_URL holds credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY instead")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ConfigError(f"CC_S3_ENDPOINT_URL={raw!r}: port out of range 1-65535") from None
    return raw.rstrip("/")


def _loopback_service(env: Mapping[str, str], prefix: str, default_port: int) -> HostPort:
    """``<prefix>_PORT`` is a bare port or HOST:PORT; ``<prefix>_HOST`` defaults to loopback."""
    name = f"{prefix}_PORT"
    raw = env.get(name, str(default_port))
    if ":" in raw:
        return _host_port(name, raw)
    return HostPort(env.get(f"{prefix}_HOST", "127.0.0.1"), _port(name, raw))


MIN_CALL_LOG_RETENTION_DAYS = 1095  # 3 years
MIN_RECORDING_RETENTION_DAYS = 92  # 3 months, rounded up
# Queues a hotline call can be answered from (asterisk-config/queues.conf.j2); SOS calls record themselves.
RECORDABLE_QUEUES = ("emergency", "hotline")


def _trunk_uri(raw: str) -> str:
    """``sip:host[:port]``; empty means no trunk (external parties cannot be dialled)."""
    if not raw:
        return ""
    match = re.fullmatch(r"sip:([A-Za-z0-9.-]+)(?::(\d{1,5}))?", raw)
    if match is None:
        raise ConfigError(f"CC_TRUNK_URI={raw!r}: expected sip:host or sip:host:port")
    if match.group(2):
        _port("CC_TRUNK_URI", match.group(2))
    return raw


def _queues(name: str, raw: str) -> frozenset[str]:
    """A comma-separated list of the platform's caller queues; empty (or 'none') records no queue's calls."""
    if raw.strip().lower() in ("", "none"):
        return frozenset()
    queues = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(queues - set(RECORDABLE_QUEUES))
    if unknown:
        raise ConfigError(f"{name}={raw!r}: unknown queue(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(RECORDABLE_QUEUES)}, or 'none'")
    return queues


CALL_LOG_EXPIRY = ("archive", "purge")


def _call_log_expiry(raw: str) -> str:
    value = raw.strip().lower()
    if value not in CALL_LOG_EXPIRY:
        raise ConfigError(f"CC_CALL_LOG_EXPIRY={raw!r}: one of {', '.join(CALL_LOG_EXPIRY)}")
    return value


def _digits(name: str, raw: str) -> str:
    if not raw.isdigit():
        raise ConfigError(f"{name}={raw!r}: digits only")
    return raw


def _caller_name(raw: str) -> str:
    # It is written into caller-ID headers and Asterisk config: no quotes, brackets or separators.
    if not raw or any(ch in raw for ch in '"<>;[]\\\n'):
        raise ConfigError(f"CC_CENTRE_NAME={raw!r}: a plain name without quotes, brackets or ';'")
    return raw


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in {"0", "1", "true", "false", "yes", "no"}:
        raise ConfigError(f"{name}={raw!r}: one of 1/0, true/false, yes/no")
    return value in {"1", "true", "yes"}


def _dial_string(raw: str) -> str:
    """A fallback ring group: ``PJSIP/9000&PJSIP/9001``. Only PJSIP endpoints, so config cannot reach a trunk
    or an application by accident."""
    if not raw:
        return ""
    for part in raw.split("&"):
        tech, _, resource = part.partition("/")
        if tech != "PJSIP" or not resource or not all(c.isalnum() or c in "-_" for c in resource):
            raise ConfigError(f"CC_SOS_FALLBACK_DIAL={raw!r}: expected PJSIP/<endpoint>[&PJSIP/<endpoint>...]")
    return raw


def _instance_name(raw: str) -> str:
    if not raw or not all(c.isalnum() or c in "-_" for c in raw):
        raise ConfigError(f"CC_ASTERISK_INSTANCE={raw!r}: letters, digits, '-' and '_' only")
    return raw


def _timezone(raw: str) -> str:
    """An IANA time zone the system's tz database knows (``Asia/Shanghai``); "today" is counted in it."""
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"CC_TIMEZONE={raw!r}: not a known time zone such as Asia/Shanghai "
                          "(the system's tz database: Debian's tzdata)") from None
    return raw
