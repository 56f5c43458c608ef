"""Settings read from ``CC_*`` environment variables.

Settings are an immutable value passed to every component that needs it; nothing reads the environment
after start-up, so tests can run several differently configured platforms side by side.

Each variable is one field of :class:`Settings` (``CC_`` + the field's name in capitals), with its default and, in
the docstring under it, what it means. pydantic-settings reads them; the validators below say what a value may be,
and :meth:`Settings.from_env` turns every refusal into one :class:`ConfigError` that names the variable.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import ssl
import stat
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ENV_PREFIX = "CC_"


class ConfigError(ValueError):
    """A ``CC_*`` variable has a value the platform cannot use; the message names the variable."""


class _SecretValueError(ValueError):
    """A refusal whose message must not repeat the value: it holds a secret."""


@dataclasses.dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True, slots=True)
class S3Settings:
    """The S3 bucket recordings go to. Credentials are not settings: boto3's own chain finds them
    (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role, …)."""

    bucket: str
    prefix: str  # "" or ending in "/"
    region: str | None
    endpoint_url: str | None  # an S3-compatible server (MinIO, …); None is AWS


MIN_CALL_LOG_RETENTION_DAYS = 1095  # 3 years
MIN_RECORDING_RETENTION_DAYS = 92  # 3 months, rounded up
# Queues a hotline call can be answered from (asterisk-config/queues.conf.j2); SOS calls record themselves.
RECORDABLE_QUEUES = ("emergency", "hotline")
# Why the outbound engine calls (callcenter.outbound.models.OutboundPurpose): CC_OUTBOUND_CONCURRENCY's keys.
OUTBOUND_PURPOSES = ("cascade", "notification", "callback", "care_call", "reminder")
RECORDING_BACKENDS = ("local", "s3")
CALL_LOG_EXPIRY = ("archive", "purge")
LOG_LEVELS = ("debug", "info", "warning", "error")
# Names an operator might reach for that the platform does not read: say which one it does read.
_S3_MISNAMED = {
    "CC_S3_ENDPOINT": "set CC_S3_ENDPOINT_URL instead",
    "CC_S3_ACCESS_KEY": "credentials come from boto3's chain: set AWS_ACCESS_KEY_ID instead",
    "CC_S3_SECRET_KEY": "credentials come from boto3's chain: set AWS_SECRET_ACCESS_KEY instead",
}


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


# -- what a value may be: each raises ValueError with the reason; Settings.from_env adds the variable's name ------
def _port(raw: object) -> int:
    try:
        port = int(str(raw))
    except ValueError:
        raise ValueError("not a port number") from None
    if not 0 < port < 65536:
        raise ValueError("port out of range 1-65535")
    return port


def _host_port(raw: object) -> HostPort:
    if isinstance(raw, HostPort):
        return raw
    host, sep, port = str(raw).rpartition(":")
    if not sep or not host:
        raise ValueError("expected HOST:PORT")
    return HostPort(host, _port(port))


def _resolved(path: Path) -> Path:
    return path.resolve()


def _flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value not in {"0", "1", "true", "false", "yes", "no"}:
        raise ValueError("one of 1/0, true/false, yes/no")
    return value in {"1", "true", "yes"}


def _one_of(*choices: str) -> BeforeValidator:
    def choose(raw: object) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return value

    return BeforeValidator(choose)


def _digits(raw: str) -> str:
    if not raw.isdigit():
        raise ValueError("digits only")
    return raw


def _trunk_uri(raw: str) -> str:
    """``sip:host[:port]``; empty means no trunk (external parties cannot be dialled)."""
    if not raw:
        return ""
    match = re.fullmatch(r"sip:([A-Za-z0-9.-]+)(?::(\d{1,5}))?", raw)
    if match is None:
        raise ValueError("expected sip:host or sip:host:port")
    if match.group(2):
        _port(match.group(2))
    return raw


def _queues(raw: object) -> frozenset[str]:
    """A comma-separated list of the platform's caller queues; empty (or 'none') records no queue's calls."""
    if not isinstance(raw, str):
        return frozenset(raw)  # type: ignore[call-overload]
    if raw.strip().lower() in ("", "none"):
        return frozenset()
    queues = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = sorted(queues - set(RECORDABLE_QUEUES))
    if unknown:
        raise ValueError(f"unknown queue(s) {', '.join(unknown)}; choose from {', '.join(RECORDABLE_QUEUES)}, "
                         "or 'none'")
    return queues


def _caller_name(raw: str) -> str:
    # It is written into caller-ID headers and Asterisk config: no quotes, brackets or separators.
    if not raw or any(ch in raw for ch in '"<>;[]\\\n'):
        raise ValueError("a plain name without quotes, brackets or ';'")
    return raw


def _dial_string(raw: str) -> str:
    """A fallback ring group: ``PJSIP/9000&PJSIP/9001``. Only PJSIP endpoints, so config cannot reach a trunk
    or an application by accident."""
    if not raw:
        return ""
    for part in raw.split("&"):
        tech, _, resource = part.partition("/")
        if tech != "PJSIP" or not resource or not all(c.isalnum() or c in "-_" for c in resource):
            raise ValueError("expected PJSIP/<endpoint>[&PJSIP/<endpoint>...]")
    return raw


def _optional_digits(raw: str) -> str:
    if raw and (not raw.isdigit() or len(raw) > 20):
        raise ValueError("digits only, or empty")
    return raw


def _per_purpose(raw: str, *, value: str) -> dict[str, str]:
    """``purpose=value,…`` over OUTBOUND_PURPOSES (each at most once); ``value`` names what the values are."""
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        purpose, sep, setting = (x.strip() for x in part.partition("="))
        if not sep or not setting:
            raise ValueError(f"{part!r}: expected purpose={value}")
        if purpose not in OUTBOUND_PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}; choose from {', '.join(OUTBOUND_PURPOSES)}")
        if purpose in pairs:
            raise ValueError(f"{purpose} is given twice")
        pairs[purpose] = setting
    return pairs


def _purpose_counts(raw: str) -> str:
    for purpose, count in _per_purpose(raw, value="count").items():
        if not count.isdigit() or not 0 <= int(count) <= 500:
            raise ValueError(f"{purpose}={count}: a count from 0 to 500")
    return raw


def _purpose_numbers(raw: str) -> str:
    for purpose, number in _per_purpose(raw, value="number").items():
        if not number.isdigit() or len(number) > 20:
            raise ValueError(f"{purpose}={number}: digits only")
    return raw


def _quiet_hours(raw: str) -> str:
    text = raw.strip().lower()
    if text in ("", "none"):
        return "none"
    if re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]", text) is None:
        raise ValueError("expected HH:MM-HH:MM (the centre's local time), e.g. 21:00-08:00, or none")
    start, end = text.split("-")
    if start == end:
        raise ValueError("the quiet hours start and end at the same time")
    return text


def _instance_name(raw: str) -> str:
    if not raw or not all(c.isalnum() or c in "-_" for c in raw):
        raise ValueError("letters, digits, '-' and '_' only")
    return raw


def _timezone(raw: str) -> str:
    """An IANA time zone the system's tz database knows (``Asia/Shanghai``); "today" is counted in it."""
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known time zone such as Asia/Shanghai "
                         "(the system's tz database: Debian's tzdata)") from None
    return raw


def _s3_bucket(raw: str) -> str:
    bucket = raw.strip()
    # S3's bucket naming rules: 3-63 lower-case letters, digits, '.' and '-', starting and ending alphanumeric.
    if bucket and (not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) or ".." in bucket):
        raise ValueError("3-63 lower-case letters, digits, '.' and '-'")
    return bucket


def _s3_prefix(raw: str) -> str:
    """'' or '/'-separated names ending in '/'."""
    prefix = raw.strip().strip("/")
    if prefix and not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*", prefix):
        raise ValueError("'/'-separated names of letters, digits, '.', '_' and '-'")
    return f"{prefix}/" if prefix else ""


def _s3_region(raw: str | None) -> str | None:
    region = (raw or "").strip() or None
    if region is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", region):
        raise ValueError("a region name such as eu-central-1")
    return region


def _check_http_url(url: str, *, expected: str, credentials: str, query: bool = False) -> None:
    """An http(s) URL with a host, a valid port, no fragment (nor query unless ``query``) and no credentials in it
    (refused without repeating it: ``credentials`` says where they go instead)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or (parts.query and not query):
        raise ValueError(f"expected {expected}")
    if parts.username or parts.password:
        raise _SecretValueError(f"holds credentials: {credentials}")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError("port out of range 1-65535") from None


def _endpoint_url(raw: str | None) -> str | None:
    url = (raw or "").strip()
    if not url:
        return None
    _check_http_url(url, expected="http(s)://host[:port]",
                    credentials="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY instead")
    return url.rstrip("/")


MAP_TILE_COORDINATES = ("wgs84", "gcj02")
_TILE_PLACEHOLDERS = ("{z}", "{x}", "{y}")


def _tile_url(raw: str | None) -> str:
    """A Leaflet tile URL template: ``http(s)://host[:port]/…{z}…{x}…{y}…``; ``{s}`` (a subdomain) only as the
    host's first label, so the pages' CSP can name the origin as ``*.rest-of-host``."""
    url = (raw or "").strip()
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not host or parts.fragment:
        raise ValueError("expected http(s)://host[:port]/…{z}/{x}/{y}…")
    if "@" in parts.netloc:
        raise _SecretValueError("holds credentials: put a key the provider needs in the query, or use a proxy")
    missing = [name for name in _TILE_PLACEHOLDERS if name not in parts.path + "?" + parts.query]
    if missing:
        raise ValueError(f"no {', '.join(missing)} in the URL: Leaflet fills {{z}}/{{x}}/{{y}} for each tile")
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host.removeprefix("{s}.")):
        raise ValueError("the host may hold {s} only as its first label ({s}.tiles.example.com)")
    return url


def tile_origin(url: str) -> str:
    """The origin the tiles of ``url`` (a valid CC_MAP_TILE_URL) come from, as a CSP source: ``{s}.`` becomes
    ``*.``."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.replace('{s}.', '*.', 1)}"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(raw: object) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (``10.0.0.5``, ``192.0.2.0/24``, ``::1``); empty is none."""
    if not isinstance(raw, str):
        return tuple(raw)  # type: ignore[call-overload]
    networks = []
    for part in (piece.strip() for piece in raw.split(",")):
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an address or network such as 10.0.0.5 or 192.0.2.0/24") from None
    return tuple(networks)


# -- SIP over TLS (CC_SIP_TLS_*): the certificate and key files Asterisk's TLS transport serves -------------------
def _optional_path(raw: object) -> Path | None:
    """A file path; empty is none."""
    if raw is None or isinstance(raw, Path):
        return raw
    text = str(raw).strip()
    return Path(text).resolve() if text else None


class _EncryptedKey(Exception):
    """The key asked for a passphrase."""


def _no_passphrase() -> bytes:
    # ssl would otherwise prompt on the terminal for an encrypted key.
    raise _EncryptedKey


def _read_pem(variable: str, path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(f"{variable}={str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{variable}={str(path)!r}: a directory, not a PEM file") from None
    except PermissionError:
        raise ConfigError(f"{variable}={str(path)!r}: not readable by this user") from None
    except (UnicodeDecodeError, OSError) as error:
        reason = "not a PEM file" if isinstance(error, UnicodeDecodeError) else error.strerror
        raise ConfigError(f"{variable}={str(path)!r}: {reason}") from None


def check_sip_tls_files(cert: Path, key: Path) -> None:
    """Refuse, naming the variable, a certificate and key Asterisk's TLS transport could not serve: missing or
    unreadable files, anything but PEM, an encrypted key, a key readable by every user, or a key that is not the
    certificate's. Neither file's content is ever repeated in a message."""
    cert_text, key_text = _read_pem("CC_SIP_TLS_CERT", cert), _read_pem("CC_SIP_TLS_KEY", key)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=cert_text)
    except (ssl.SSLError, ValueError):
        raise ConfigError(f"CC_SIP_TLS_CERT={str(cert)!r}: not a PEM certificate") from None
    if "PRIVATE KEY-----" not in key_text:
        raise ConfigError(f"CC_SIP_TLS_KEY={str(key)!r}: not a PEM private key")
    if "ENCRYPTED" in key_text:
        raise ConfigError(f"CC_SIP_TLS_KEY={str(key)!r}: encrypted; Asterisk reads it unencrypted (protect it with "
                          "the file's mode instead: chmod 600)")
    mode = key.stat().st_mode
    if mode & stat.S_IROTH:
        raise ConfigError(f"CC_SIP_TLS_KEY={str(key)!r}: readable by every user (mode {stat.S_IMODE(mode):04o}); "
                          "chmod 600 it")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=_no_passphrase)
    except _EncryptedKey:
        raise ConfigError(f"CC_SIP_TLS_KEY={str(key)!r}: encrypted; Asterisk reads it unencrypted") from None
    except ssl.SSLError as error:
        why = "not the private key of CC_SIP_TLS_CERT" if "KEY_VALUES_MISMATCH" in str(error) \
            else "not a private key OpenSSL can read"
        raise ConfigError(f"CC_SIP_TLS_KEY={str(key)!r}: {why}") from None



# -- MQTT (CC_MQTT_*): the devices' channel for alarms, positions, readings and heartbeats --------------------------
MQTT_OFF = "off"
MQTT_DEFAULT_PORT = 1883
# The platform's own MQTT account: a name, never all digits (a device's MQTT username is its id, rendered into the
# broker's ACL as the one topic tree it may use).
_MQTT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


def _mqtt_url(raw: str) -> str:
    """'' (the platform-managed broker, when installed), 'off', or ``mqtt://host[:port]``, normalised."""
    url = raw.strip()
    if url.lower() in ("", MQTT_OFF):
        return url.lower()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "mqtts":
        raise ValueError("TLS to the broker is not supported yet: use mqtt:// to a broker on this machine or "
                         "across a VPN")
    if parts.scheme != "mqtt" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("expected off, or mqtt://host[:port]")
    if parts.username or parts.password:
        raise _SecretValueError("holds credentials: set CC_MQTT_USERNAME and CC_MQTT_PASSWORD instead")
    try:
        port = parts.port or MQTT_DEFAULT_PORT
    except ValueError:
        raise ValueError("port out of range 1-65535") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"mqtt://{host}:{port}"


def _on_off(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("on", "off"):
        raise ValueError("expected on or off")
    return value


def _care_window(raw: str) -> str:
    text = raw.strip()
    match = re.fullmatch(r"(([01][0-9]|2[0-3]):[0-5][0-9])-(([01][0-9]|2[0-3]):[0-5][0-9])", text)
    if match is None:
        raise ValueError("expected HH:MM-HH:MM (the centre's local time), e.g. 09:00-11:00")
    if match.group(1) >= match.group(3):
        raise ValueError("the window must end after it starts, within one day")
    return text


def _telemetry_process(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("on", "off"):
        raise ValueError("expected on or off")
    return value


def _mqtt_username(raw: str) -> str:
    if not _MQTT_USERNAME.fullmatch(raw):
        raise ValueError("a letter, then up to 63 letters, digits, '.', '_' or '-' (never all digits: devices' "
                         "MQTT usernames are their ids)")
    return raw

# -- SMS (CC_SMS_*, CC_SMPP_*): the notification service's channels (callcenter.notifications) -----------------------
SMS_CHANNELS = ("off", "smpp", "http")
_SMS_TEMPLATE_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PROVIDER_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _printable(limit: int, what: str) -> Callable[[str], str]:
    """Plain ASCII of at most ``limit`` characters (SMPP's C-octet strings: system_id, source_addr)."""
    def check(raw: str) -> str:
        value = raw.strip()
        if len(value) > limit or not all(32 < ord(ch) < 127 for ch in value):
            raise ValueError(f"{what}: at most {limit} ASCII characters, no spaces")
        return value
    return check


def _smpp_password(raw: str | None) -> str | None:
    if raw and (len(raw) > 8 or not raw.isascii()):
        raise _SecretValueError("must be at most 8 ASCII characters (SMPP 3.4's password field)")
    return raw or None


def _sms_signature(raw: str) -> str:
    value = raw.strip().strip("【】")
    if len(value) > 12 or any(ch in value for ch in "【】[]\n"):
        raise ValueError("the signature (签名) is at most 12 characters, without brackets")
    return value


def _http_url(raw: str) -> str:
    url = raw.strip()
    if url:
        _check_http_url(url, expected="http(s)://host[:port]/path", query=True,
                        credentials="set CC_SMS_HTTP_KEY and CC_SMS_HTTP_SECRET instead")
    return url


def _template_codes(raw: str) -> str:
    """``key=CODE,key=CODE``: the provider's codes of the catalogue's templates, normalised."""
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, code = (part.strip() for part in item.partition("="))
        if not sep or not _SMS_TEMPLATE_KEY.fullmatch(key) or not _PROVIDER_CODE.fullmatch(code):
            raise ValueError(f"{item!r}: expected template_key=PROVIDER_CODE, comma-separated")
        pairs.append(f"{key}={code}")
    return ",".join(pairs)


Port = Annotated[int, BeforeValidator(_port)]
Networks = Annotated[tuple[Network, ...], BeforeValidator(_networks)]
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
ResolvedPath = Annotated[Path, AfterValidator(_resolved)]
Digits = Annotated[str, AfterValidator(_digits)]


def _digit_list(value: str) -> str:
    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        _digits(item)
    return ",".join(items)


# pydantic's own wording for what a bounded integer field refused, in the words the messages above use.
_PYDANTIC_REASONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "int_parsing": lambda _ctx: "not an integer",
    "int_from_float": lambda _ctx: "not an integer",
    "greater_than_equal": lambda ctx: f"must be at least {ctx['ge']}",
    "less_than_equal": lambda ctx: f"must be at most {ctx['le']}",
}


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``, so a test can build
    settings from a dict without touching (or inheriting) the process environment."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    # The hook pydantic-settings' own dotenv source overrides to read variables from elsewhere.
    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    """The platform's configuration: the field ``foo_bar`` is the variable ``CC_FOO_BAR``. Build it with
    :meth:`from_env`, which also turns refusals into :class:`ConfigError`."""

    # No JSON decoding of values: every variable is plain text (CC_RECORD_QUEUES is a comma-separated list).
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, enable_decoding=False,
                                      use_attribute_docstrings=True, env_ignore_empty=False)

    data_dir: ResolvedPath = PROJECT_ROOT / "var"
    """Data directory: SQLite file, generated secrets, demo credentials."""
    database_url: str = ""
    """``sqlite://…`` or ``postgresql://user:pass@host:5432/db``; empty is ``sqlite:///$CC_DATA_DIR/callcenter.sqlite3``.
    Stored with the async driver the platform uses (``postgresql+asyncpg://``, ``sqlite+aiosqlite://``)."""
    data_key_file: Annotated[Path | None, BeforeValidator(lambda raw: raw or None)] = None
    """The data keys that seal ID numbers, health data and precise locations in the database (db.keyring), mode
    0600; empty is ``$CC_DATA_DIR/data-keys.json``. Made by ``callcenter keys init`` (``make run``) or the first start
    on an empty database; back it up apart from the database: without it the sealed data cannot be read."""
    http_host: str = "127.0.0.1"
    """Address of the web panel, REST API, WebSocket and ``/healthz``."""
    http_port: Port = 8080
    """Port of the web panel, REST API, WebSocket and ``/healthz``."""
    sip_bind: Annotated[HostPort, BeforeValidator(_host_port)] = HostPort("127.0.0.1", 5060)
    """HOST:PORT of the PJSIP UDP transport for devices and agents' phones."""
    ami_host: str = "127.0.0.1"
    """Address of the Asterisk Manager Interface when CC_AMI_PORT is a bare port (loopback: it is privileged)."""
    ami_port: Port = 5038
    """Port of the Asterisk Manager Interface, or HOST:PORT (then the host wins over CC_AMI_HOST)."""
    agi_host: str = "127.0.0.1"
    """Address of the platform's FastAGI server when CC_AGI_PORT is a bare port."""
    agi_port: Port = 4573
    """Port of the platform's FastAGI server, or HOST:PORT (then the host wins over CC_AGI_HOST)."""
    agi_allowed_peers: Networks = LOOPBACK
    """Addresses or networks (comma-separated, CIDR) FastAGI connections are served from: the Asterisk host only.
    Any other peer is closed unserved and logged (telephony.fastagi); default loopback."""
    rtp_start: Port = 10000
    """First port of Asterisk's RTP range (the range holds at least 10 ports)."""
    rtp_end: Port = 10999
    """Last port of Asterisk's RTP range."""
    recordings_dir: ResolvedPath = PROJECT_ROOT / "recordings"
    """Local recording storage (``<YYYY>/<MM>/<DD>/<serial>.ogg``, Opus)."""
    ivr_flows_dir: ResolvedPath = PROJECT_ROOT / "ivr_flows"
    """IVR menus (YAML) and prompt texts."""
    admin_password: Annotated[str | None, BeforeValidator(lambda raw: raw or None)] = Field(None, repr=False)
    """Bootstraps the first ``admin`` account (never overwrites one); empty is none."""
    api_token_ttl: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 12 * 3600
    """Lifetime of REST API bearer tokens in seconds: one shift (12 h) by default; at most a week, at least a
    minute."""
    provider_api_max_skew: Annotated[int, Field(ge=30, le=3600)] = 300
    """Seconds a signed provider report's timestamp may be off the server's clock (providers.reporting)."""
    cookie_secure: Annotated[bool, BeforeValidator(_flag)] = False
    """1 behind TLS (a reverse proxy): the panel's session cookie carries Secure. Plain HTTP on a single machine
    (make run) cannot, or the browser would never send it back."""
    trusted_proxies: Networks = ()
    """Reverse proxies whose ``X-Forwarded-For`` names the client (addresses or networks, comma-separated): the
    log-in limits and the audit then see the client's address, not the proxy's (web.forwarded). Empty: the header
    is ignored."""
    asterisk_root: Path = Field(default_factory=default_asterisk_root)
    """Where the private Asterisk root is built and reused."""
    asterisk_instance: Annotated[str, AfterValidator(_instance_name)] = "main"
    """Instance name: its own config, spool and log dirs inside the runtime."""
    emergency_number: Digits = "120"
    """The emergency number bridged into SOS conferences."""
    service_numbers: Annotated[str, AfterValidator(_digit_list)] = "110,119,120,122,12345,12349"
    """Emergency and public-service numbers an agent may dial into a conference besides the elder's contacts and
    the supervisors' allowed numbers (dial_policy), comma-separated."""
    trunk_uri: Annotated[str, AfterValidator(_trunk_uri)] = ""
    """``sip:host[:port]``: the SIP trunk external numbers (120, doctors, relatives, social workers) are dialled
    through; empty is no trunk."""
    centre_number: Digits = "12349"
    """The caller ID number conference parties see."""
    centre_name: Annotated[str, AfterValidator(_caller_name)] = "养老服务中心"
    """The caller ID name conference parties see."""
    log_level: Annotated[str, _one_of(*LOG_LEVELS)] = "info"
    """Level of the structured JSON logs on stderr."""
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Shanghai"
    """The centre's local time zone (an IANA name): where "today" begins and ends on the wallboard."""
    sip_qualify_seconds: Annotated[int, Field(ge=0)] = 30
    """OPTIONS pings to registered phones: a phone that stops answering is marked unreachable (0: off)."""
    device_rtp_timeout: Annotated[int, Field(ge=0)] = 60
    """A device whose audio stops for this long is a dead line: Asterisk hangs up, and an unanswered SOS becomes an
    abandoned SOS that is called back. 0 turns it off (devices that suppress silence)."""
    sos_answer_timeout: Annotated[int, Field(ge=5)] = 15
    """GB/T 33358: answer within 15 s. Past it the SOS overflows to on-duty supervisors, then to the fallback."""
    sos_overflow_timeout: Annotated[int, Field(ge=5)] = 20
    """Seconds each overflow step (supervisors, fallback) rings."""
    sos_fallback_dial: Annotated[str, AfterValidator(_dial_string)] = ""
    """Last-resort ring group, e.g. ``PJSIP/9000&PJSIP/9001``; empty is none."""
    outbound_channels: Annotated[int, Field(ge=0, le=5000)] = 30
    """Calls the centre can carry at once (its trunk's channels, Asterisk's capacity): the outbound engine places
    calls only within what inbound calls in progress and CC_OUTBOUND_RESERVED_CHANNELS leave. 0: no outbound work."""
    outbound_reserved_channels: Annotated[int, Field(ge=0, le=5000)] = 10
    """Channels always kept free for the next inbound SOS and hotline calls: outbound work never takes them."""
    outbound_concurrency: Annotated[str, AfterValidator(_purpose_counts)] = (
        "cascade=6,notification=4,callback=2,care_call=4,reminder=2")
    """The most outbound calls of each purpose at once, ``purpose=count`` (purposes: cascade, notification,
    callback, care_call, reminder); a purpose not named gets 1."""
    outbound_caller_ids: Annotated[str, AfterValidator(_purpose_numbers)] = ""
    """The caller ID number shown per purpose, ``purpose=number``; a purpose not named shows CC_CENTRE_NUMBER."""
    outbound_quiet_hours: Annotated[str, AfterValidator(_quiet_hours)] = "21:00-08:00"
    """No care calls or reminders in these hours (the centre's local time, CC_TIMEZONE), ``HH:MM-HH:MM`` or
    ``none``; cascades, help-is-coming messages and call-backs are never held back by them."""
    outbound_ring_seconds: Annotated[int, Field(ge=10, le=120)] = 30
    """How long an outbound call rings before it counts as not answered."""
    cascade_station_number: Annotated[str, AfterValidator(_optional_digits)] = ""
    """The community station's number, called as the last step of every contact cascade; empty: none."""
    cascade_on_abandoned_sos: Annotated[str, AfterValidator(_on_off)] = "on"
    """``on``: an SOS nobody answered (the elder hung up or fell silent first) starts the elder's contact cascade at
    once, beside the centre's call-back; ``off``: agents start it from the order."""
    # -- proactive care calls (callcenter.care_calls) -----------------------------------------------------------
    care_calls_auto: Annotated[str, AfterValidator(_on_off)] = "off"
    """``on``: every elder living alone or in an empty nest (``living_situation``) who has no check-in schedule gets
    a daily one (CC_CARE_CALLS_WINDOW) from the planner; ``off`` (the default): schedules are made by hand or by a
    supervisor's "enable for all living alone"."""
    care_calls_window: Annotated[str, AfterValidator(_care_window)] = "09:00-11:00"
    """The window (``HH:MM-HH:MM``, the centre's local time, within one day) of the daily check-ins that
    CC_CARE_CALLS_AUTO and "enable for all living alone" create."""
    care_calls_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """How many times a check-in call is tried before it counts as missed (and is escalated)."""
    care_calls_retry_seconds: Annotated[int, Field(ge=0, le=7200)] = 900
    """Seconds between a check-in's unanswered tries: 3 tries 15 minutes apart take 30 minutes."""
    care_calls_plan_seconds: Annotated[int, Field(ge=1, le=3600)] = 300
    """How often the care-call planner looks for today's check-ins and greetings that are not planned yet (a new
    schedule is planned at once)."""
    # -- reminders (callcenter.reminders) ------------------------------------------------------------------------
    reminders_window: Annotated[str, AfterValidator(_care_window)] = "09:00-11:00"
    """The window (``HH:MM-HH:MM``, the centre's local time, within one day) of the reminder calls of a visit
    tomorrow and of a missing measurement of a chronic-disease plan."""
    reminders_plan_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    """How often the reminder planner makes the reminders that are due (a medication reminder is made within this
    many seconds of its time)."""
    call_log_retention_days: Annotated[int, Field(ge=MIN_CALL_LOG_RETENTION_DAYS)] = MIN_CALL_LOG_RETENTION_DAYS
    """Seed 5.10: call records are kept at least 3 years."""
    call_log_expiry: Annotated[str, _one_of(*CALL_LOG_EXPIRY)] = "archive"
    """What retention does with a call log past its retention: "archive" (a compressed file, then out of the
    database) or "purge" (out of the database)."""
    recording_retention_days: Annotated[int, Field(ge=MIN_RECORDING_RETENTION_DAYS)] = MIN_RECORDING_RETENTION_DAYS
    """Seed 5.10: recordings are kept at least 3 months."""
    recording_scan_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    """How often the recording pipeline rescans the spool: retries, and files of calls that ended unseen."""
    record_queues: Annotated[frozenset[str], BeforeValidator(_queues)] = frozenset(RECORDABLE_QUEUES)
    """The queues whose answered calls are recorded from the moment an agent picks up (comma-separated, or
    'none'); SOS calls are always recorded from their first second, whatever this says."""
    wrapup_seconds: Annotated[int, Field(ge=0, le=600)] = 30
    """After-call work: an agent whose queue call ends takes no hotline call for this long (SOS calls still reach
    them) unless they press "ready"; 0 turns wrap-up off."""
    escalation_scan_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    """How often the supervision-case scanner looks for orders near or past their deadline, repeated complaints
    and dissatisfied results (callcenter.supervision_cases)."""
    # -- device and sensor alarms (callcenter.alarms) -------------------------------------------------------------
    alarm_merge_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300
    """A device's repeat of an alarm of the same type within this many seconds of its last one, while that alarm
    is not resolved, is counted on it instead of raising another; 0 raises every one."""
    alarm_clock_skew_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300
    """How far ahead of the platform's clock a device's alarm time may be; a later one is refused (future_time)."""
    alarm_intake_seconds: Annotated[int, Field(ge=1, le=10)] = 3
    """How long a device's alarm may wait for the database before it is kept in the alarms' local journal instead
    (and acknowledged; stored in order once the database answers)."""
    alarm_answer_target_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    """An alarm not taken by an agent within this many seconds of its receipt overflows to the supervisors (it
    stays offered to agents). TEC Quality's answer target: 97.5 % of alarms answered within 60 s."""
    alarm_offer_seconds: Annotated[int, Field(ge=3, le=600)] = 20
    """How long an alarm offered to one agent's panel waits for them to take it before it is offered to another."""
    alarm_sweep_seconds: Annotated[int, Field(ge=1, le=600)] = 10
    """How often the alarm distributor looks at the unresolved alarms when nothing wakes it (its safety net: new
    alarms, takes and agents' changes wake it at once)."""
    # -- end of device and sensor alarms ------------------------------------------------------------------------
    # -- signed HTTP ingest of device messages (callcenter.ingest) ------------------------------------------------
    ingest_max_skew: Annotated[int, Field(ge=30, le=3600)] = 300
    """Seconds a signed ingest request's timestamp may be off the server's clock (callcenter.ingest)."""
    ingest_max_body_bytes: Annotated[int, Field(ge=16_384, le=2 * 1024 * 1024)] = 256 * 1024
    """The largest ingest request body; a larger one is refused with 413 before its signature is checked."""
    # -- end of signed HTTP ingest -------------------------------------------------------------------------------
    # -- health readings (callcenter.readings) ----------------------------------------------------------------------
    readings_retention_days: Annotated[int, Field(ge=30, le=36_500)] = 1096
    """How long readings are kept (three years by default); older ones are removed, and a device's reading older
    than this is refused."""
    readings_partitions_ahead: Annotated[int, Field(ge=1, le=24)] = 3
    """PostgreSQL: how many months' partitions of the readings are made ahead of the current one."""
    # -- end of health readings -------------------------------------------------------------------------------------
    # -- the panel's map (callcenter.locations, web/static/map.js) -----------------------------------------------
    map_tile_url: Annotated[str, BeforeValidator(_tile_url)] = ""
    """The map's tiles, a Leaflet URL template (``https://{s}.tiles.example.com/{z}/{x}/{y}.png``); empty: no tiles,
    the map draws the positions, the fences and a scale on a blank background. The pages' CSP allows images from
    its origin only while it is set."""
    map_tile_coordinates: Annotated[str, _one_of(*MAP_TILE_COORDINATES)] = "wgs84"
    """The datum of CC_MAP_TILE_URL's tiles: wgs84 (OpenStreetMap and most others) or gcj02 (Chinese providers such
    as AutoNavi): on gcj02 tiles the panel shifts what it draws for display; positions stay WGS-84 in storage."""
    map_tile_attribution: Annotated[str, AfterValidator(lambda raw: raw.strip()[:200])] = ""
    """The credit the tile provider asks for, shown in the map's corner (plain text)."""
    # -- end of the panel's map ---------------------------------------------------------------------------------------
    positions_retention_days: Annotated[int, Field(ge=1, le=36_500)] = 90
    """How long devices' positions are kept (90 days by default); older fixes are removed every hour. Where a person
    was is sensitive personal information (GB/T 35273): an alarm keeps its own location for as long as the alarm."""
    health_visit_scan_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900
    """How often the chronic-disease plans are scanned for overdue follow-up visits, each of which raises one work
    order for the elder's community doctor (callcenter.health_records)."""
    recording_storage: Annotated[str, _one_of(*RECORDING_BACKENDS)] = "local"
    """Where new recordings are stored: "local" (CC_RECORDINGS_DIR) or "s3" (needs CC_S3_BUCKET)."""
    s3_bucket: Annotated[str, AfterValidator(_s3_bucket)] = ""
    """The S3 bucket recordings are kept in; while set, recordings already there still play after a switch back to
    local storage."""
    s3_prefix: Annotated[str, AfterValidator(_s3_prefix)] = "recordings/"
    """Key prefix of the recordings in the bucket."""
    s3_region: Annotated[str | None, BeforeValidator(_s3_region)] = None
    """The bucket's region, e.g. cn-north-1; empty is boto3's default."""
    s3_endpoint_url: Annotated[str | None, BeforeValidator(_endpoint_url)] = None
    """An S3-compatible server (MinIO, …), ``http(s)://host[:port]``; empty is AWS."""
    sos_intake_seconds: Annotated[int, Field(ge=1, le=10)] = 3
    """How long SOS intake may take before the call goes to the emergency queue without it (the AMI safety net and
    the journal catch up on what it did not write)."""
    login_attempts_per_minute: Annotated[int, Field(ge=5, le=10_000)] = 60
    """Log-in attempts a minute from one source address (users.login_guard): a shift logging in at 08:00 behind
    one office address fits; a guesser gets one try a second at most."""
    login_hash_concurrency: Annotated[int, Field(ge=1, le=64)] = 1
    """Password checks at once: Argon2 takes a core for ~130 ms; one at a time leaves the other core to calls
    (2-core machines)."""
    audit_seal_seconds: Annotated[float, Field(ge=0.1, le=3600)] = 2.0
    """How often new audit entries are sealed into the hash chain (audit.chain): the longest an entry stays
    outside it."""
    sip_ban_failures: Annotated[int, Field(ge=0, le=10_000)] = 10
    """SIP brute-force protection (sip_security): this many failed authentications from one address within
    CC_SIP_BAN_WINDOW_SECONDS ban the address in Asterisk's PJSIP ACL; 0 turns the protection off."""
    sip_ban_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 300
    """The window failed SIP authentications are counted in (seconds). A device retrying a wrong password once a
    minute makes 5 in 5 minutes: misconfigured, not banned."""
    sip_ban_seconds: Annotated[int, Field(ge=1, le=30 * 86_400)] = 3600
    """How long a SIP ban lasts (seconds); it is lifted in Asterisk when it expires, or earlier by an admin."""
    sip_ban_exempt: Networks = ()
    """Addresses or networks (comma-separated, CIDR) never banned, e.g. a care home's NAT address that many
    pendants share; their failures are still logged."""

    # -- SIP over TLS and SRTP for devices and phones on networks the centre does not control (docs/security.md) -----
    sip_tls_cert: Annotated[Path | None, BeforeValidator(_optional_path)] = None
    """PEM certificate (its chain after it) of the PJSIP TLS transport; set with CC_SIP_TLS_KEY, or neither (no TLS).
    Copied into Asterisk's instance at every render: replace the file and reload to rotate it."""
    sip_tls_key: Annotated[Path | None, BeforeValidator(_optional_path)] = None
    """PEM private key of CC_SIP_TLS_CERT: unencrypted, not readable by every user (chmod 600)."""
    sip_tls_port: Port = 5061
    """TCP port of the PJSIP TLS transport, on CC_SIP_BIND's host."""
    sip_tls_required: Annotated[bool, BeforeValidator(_flag)] = False
    """1: devices and agents' phones are served over TLS with SRTP (SDES) only: their calls over UDP, or offering
    plain RTP, are refused, and UDP listens only when the trunk needs it. 0: UDP keeps working (trusted LANs) and a
    device or phone may choose TLS and SRTP by itself. Needs CC_SIP_TLS_CERT and CC_SIP_TLS_KEY."""

    @model_validator(mode="after")
    def _sip_tls_consistent(self) -> Settings:
        cert, key = self.sip_tls_cert, self.sip_tls_key
        if cert is None and key is None:
            stray = [_env_name(name) for name in ("sip_tls_port", "sip_tls_required")
                     if name in self.model_fields_set and getattr(self, name)]
            if stray:
                raise ConfigError(f"{', '.join(stray)} set without CC_SIP_TLS_CERT and CC_SIP_TLS_KEY: name the "
                                  "certificate and its key, or unset them")
            return self
        if cert is None or key is None:
            given, missing = ("CC_SIP_TLS_CERT", "CC_SIP_TLS_KEY") if key is None else ("CC_SIP_TLS_KEY",
                                                                                      "CC_SIP_TLS_CERT")
            raise ConfigError(f"{given} is set but {missing} is not: set both (SIP over TLS) or neither")
        check_sip_tls_files(cert, key)
        return self

    @property
    def sip_tls(self) -> HostPort | None:
        """Where the PJSIP TLS transport listens (CC_SIP_BIND's host), or None without a certificate."""
        if self.sip_tls_cert is None:
            return None
        return HostPort(self.sip_bind.host, self.sip_tls_port)
    # -- end of SIP over TLS ------------------------------------------------------------------------------------------

    # -- MQTT, the devices' channel for alarms, positions, readings and heartbeats (docs/device-protocol.md) --------
    mqtt_url: Annotated[str, AfterValidator(_mqtt_url)] = ""
    """Where the platform's MQTT client connects. Empty: the platform-managed Mosquitto on CC_MQTT_BIND (``callcenter
    mqtt start``, which ``make run`` runs) when ``mosquitto`` is installed on this machine; without it MQTT is off, and
    /healthz and the log say so. ``off``: MQTT off. ``mqtt://host[:port]``: a broker the platform does not manage (its
    accounts and ACLs are its own admin's; devices' MQTT passwords are not issued here). TLS (``mqtts://``) is not
    supported yet."""
    mqtt_bind: Annotated[HostPort, BeforeValidator(_host_port)] = HostPort("127.0.0.1", 1884)
    """HOST:PORT the platform-managed Mosquitto listens on, for devices and the platform (1884: Debian's own mosquitto
    service takes 1883). Devices on the network need an address they reach, e.g. 0.0.0.0:1884."""
    mqtt_username: Annotated[str, AfterValidator(_mqtt_username)] = "callcenter"
    """The platform's own MQTT account: it reads every device's topics and writes their acknowledgements."""
    mqtt_password: Annotated[str | None, BeforeValidator(lambda raw: raw or None)] = Field(None, repr=False)
    """The platform account's password. Empty: for the platform-managed broker, generated once per data dir
    (``$CC_DATA_DIR/secrets/mqtt-platform.secret``); for a broker at CC_MQTT_URL, none."""
    mqtt_max_payload_bytes: Annotated[int, Field(ge=256, le=262_144)] = 16_384
    """The largest device message the platform reads; a larger one is refused unread, counted and logged (its topic
    and size, never its content). An alarm is a few hundred bytes."""

    @model_validator(mode="after")
    def _mqtt_consistent(self) -> Settings:
        if self.mqtt_url and "mqtt_bind" in self.model_fields_set:
            raise ConfigError(f"CC_MQTT_BIND is where the platform-managed Mosquitto listens, but CC_MQTT_URL="
                              f"{self.mqtt_url!r} does not use it: unset one of them")
        return self

    @property
    def mqtt_off(self) -> bool:
        """MQTT is off by configuration (CC_MQTT_URL=off); without ``mosquitto`` installed it may be off anyway."""
        return self.mqtt_url == MQTT_OFF

    @property
    def mqtt_external(self) -> HostPort | None:
        """The broker at CC_MQTT_URL, or None: the platform-managed one (empty) or none (off)."""
        if self.mqtt_url in ("", MQTT_OFF):
            return None
        parts = urllib.parse.urlsplit(self.mqtt_url)
        assert parts.hostname is not None and parts.port is not None  # normalised by _mqtt_url
        return HostPort(parts.hostname, parts.port)
    # -- end of MQTT --------------------------------------------------------------------------------------------------

    telemetry_process: Annotated[str, AfterValidator(_telemetry_process)] = "off"
    """``on``: device readings are taken by a process of their own (``callcenter.telemetry``, started and watched by
    the platform) at a lower CPU priority (CC_TELEMETRY_NICE), rather than by the platform's; needs PostgreSQL and
    MQTT. ``off`` (the default): the platform's process takes them, batched, giving way to SOS calls. Off by default
    because on one two-core machine it was measured slower for both (docs/performance.md): the process shares the
    cores and PostgreSQL anyway; it is the way to take readings on another machine."""
    telemetry_nice: Annotated[int, Field(ge=0, le=19)] = 10
    """The telemetry process's niceness (0-19, added to the platform's): at 10, a busy core gives the platform's
    process about nine tenths of its time whenever both want it."""

    @model_validator(mode="after")
    def _telemetry_consistent(self) -> Settings:
        if self.telemetry_process == "on" and not self.database_url.startswith("postgresql"):
            raise ConfigError("CC_TELEMETRY_PROCESS=on needs PostgreSQL (CC_DATABASE_URL): SQLite has one writer, "
                              "and only the platform's process can give the red button its turn first")
        if self.telemetry_process == "on" and self.mqtt_off:
            raise ConfigError("CC_TELEMETRY_PROCESS=on needs MQTT, but CC_MQTT_URL=off")
        return self

    @property
    def telemetry_in_own_process(self) -> bool:
        """Whether the telemetry process runs (CC_TELEMETRY_PROCESS=on; with no broker found at start, none is
        started)."""
        return self.telemetry_process == "on"

    # -- SMS: the notification service (callcenter.notifications, docs/architecture.md) -------------------------------
    sms_channel: Annotated[str, _one_of(*SMS_CHANNELS)] = "off"
    """Where SMS go: ``off`` (the default: each message is still checked, then stored as failed with the reason
    "SMS is off" and reported on its work order), ``smpp`` (an SMSC over SMPP 3.4, CC_SMPP_*) or ``http`` (a
    Chinese SMS provider's template API, CC_SMS_HTTP_*)."""
    sms_signature: Annotated[str, AfterValidator(_sms_signature)] = ""
    """The centre's SMS signature (签名, e.g. 养老服务中心), shown as 【…】 before every text: prepended on SMPP, sent
    as the sign name to an HTTP provider (which needs one registered). Counted in the one-SMS length."""
    sms_max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Attempts at one SMS before it fails and its work order is told."""
    sms_retry_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    """The wait before the second attempt; it doubles for each further one (at most an hour)."""
    sms_receipt_hours: Annotated[int, Field(ge=1, le=720)] = 72
    """How long an SMS sent over SMPP waits for its delivery receipt before it counts as expired (and is reported)."""
    sms_round_seconds: Annotated[int, Field(ge=1, le=600)] = 5
    """How often the sender looks for SMS due (a new one is sent at once; this paces the retries)."""
    smpp_host: str = "127.0.0.1"
    """The SMSC (or SMPP gateway) the platform binds to as a transceiver."""
    smpp_port: Port = 2775
    """The SMSC's SMPP port."""
    smpp_system_id: Annotated[str, AfterValidator(_printable(15, "system_id"))] = ""
    """The platform's SMPP account (system_id) at the SMSC: needed for CC_SMS_CHANNEL=smpp."""
    smpp_password: Annotated[str | None, BeforeValidator(_smpp_password)] = Field(None, repr=False)
    """That account's password (at most 8 characters, SMPP 3.4)."""
    smpp_source_addr: Annotated[str, AfterValidator(_printable(20, "source_addr"))] = ""
    """The sender shown on phones (the centre's SMS number, e.g. 106…); empty: the SMSC's default."""
    smpp_timeout_seconds: Annotated[int, Field(ge=1, le=120)] = 10
    """How long an attempt waits for the SMSC's answer to a submit_sm (and the connect and bind)."""
    sms_http_url: Annotated[str, AfterValidator(_http_url)] = ""
    """The HTTP provider's (or relay's) send endpoint for CC_SMS_CHANNEL=http: one signed JSON POST per SMS."""
    sms_http_key: Annotated[str, AfterValidator(lambda raw: raw.strip())] = ""
    """The key id the requests are signed under (X-CC-Key-Id)."""
    sms_http_secret: Annotated[str | None, BeforeValidator(lambda raw: raw or None)] = Field(None, repr=False)
    """The secret the requests are signed with (HMAC-SHA256, api.signing)."""
    sms_http_templates: Annotated[str, AfterValidator(_template_codes)] = ""
    """The provider's codes of the catalogue's templates, ``alarm_notice=SMS_0001,help_coming=SMS_0002``; a template
    not listed is sent under its own key."""
    sms_http_timeout_seconds: Annotated[int, Field(ge=1, le=120)] = 10
    """How long one request to the HTTP provider may take."""

    @model_validator(mode="after")
    def _sms_consistent(self) -> Settings:
        if self.sms_channel == "smpp" and not self.smpp_system_id:
            raise ConfigError("CC_SMS_CHANNEL=smpp needs CC_SMPP_SYSTEM_ID (and CC_SMPP_PASSWORD if the SMSC "
                              "wants one)")
        if self.sms_channel == "http":
            missing = [name for name, value in (("CC_SMS_HTTP_URL", self.sms_http_url),
                                                ("CC_SMS_HTTP_KEY", self.sms_http_key),
                                                ("CC_SMS_HTTP_SECRET", self.sms_http_secret),
                                                ("CC_SMS_SIGNATURE", self.sms_signature)) if not value]
            if missing:
                raise ConfigError(f"CC_SMS_CHANNEL=http needs {', '.join(missing)}")
        return self

    @property
    def sms_template_codes(self) -> dict[str, str]:
        return dict(pair.split("=", 1) for pair in self.sms_http_templates.split(",") if pair)
    # -- end of SMS ---------------------------------------------------------------------------------------------------

    spool_min_free_mb: Annotated[int, Field(ge=1, le=1_000_000)] = 512
    """Free space (MB) under which Asterisk's recordings spool is alarmed as low (health.disk). 512 MB of spool
    holds about nine hours of call audio (8 kHz 16-bit WAV, 0.94 MB a minute): thirty SOS calls of a quarter of an
    hour at once before MixMonitor would fail."""
    recordings_min_free_mb: Annotated[int, Field(ge=1, le=1_000_000)] = 512
    """Free space (MB) under which the local recordings store is alarmed as low; 512 MB of Opus hold ~100 hours."""
    data_min_free_mb: Annotated[int, Field(ge=1, le=1_000_000)] = 512
    """Free space (MB) under which the data dir (conversions, journal, CDR offset, SQLite) is alarmed as low."""
    disk_check_seconds: Annotated[int, Field(ge=1, le=3600)] = 15
    """How often the watched disks are measured (and on every health check)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in ``environ`` (the process environment by default); absent variables take their
        defaults. Raises :class:`ConfigError` naming every variable it refuses."""
        env = os.environ if environ is None else environ
        for name, hint in _S3_MISNAMED.items():
            if env.get(name):
                raise ConfigError(f"{name} is not read: {hint}")
        try:
            return cls(_build_sources=((_Environment(cls, env),), {}))
        except ValidationError as refused:
            raise ConfigError("; ".join(_reason(problem) for problem in refused.errors())) from None

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed; like ``dataclasses.replace``, the new values are not validated."""
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"not a setting: {', '.join(unknown)}")
        return self.model_copy(update=changes)

    # -- the composite parts other code uses ---------------------------------------------------------------------
    @property
    def service_number_set(self) -> frozenset[str]:
        """CC_SERVICE_NUMBERS and the emergency number: dialled into conferences without a contact or an allowance."""
        return frozenset(filter(None, self.service_numbers.split(","))) | {self.emergency_number}

    @property
    def outbound_concurrency_map(self) -> dict[str, int]:
        """CC_OUTBOUND_CONCURRENCY per purpose; 1 for a purpose not named."""
        given = _per_purpose(self.outbound_concurrency, value="count")
        return {purpose: int(given.get(purpose, 1)) for purpose in OUTBOUND_PURPOSES}

    @property
    def outbound_caller_id_map(self) -> dict[str, str]:
        """CC_OUTBOUND_CALLER_IDS per purpose; CC_CENTRE_NUMBER for a purpose not named."""
        given = _per_purpose(self.outbound_caller_ids, value="number")
        return {purpose: given.get(purpose, self.centre_number) for purpose in OUTBOUND_PURPOSES}

    @property
    def data_key_path(self) -> Path:
        assert self.data_key_file is not None  # filled from CC_DATA_DIR when empty
        return self.data_key_file

    @property
    def http(self) -> HostPort:
        return HostPort(self.http_host, self.http_port)

    @property
    def sip(self) -> HostPort:
        return self.sip_bind

    @property
    def ami(self) -> HostPort:
        return HostPort(self.ami_host, self.ami_port)

    @property
    def agi(self) -> HostPort:
        return HostPort(self.agi_host, self.agi_port)

    @property
    def s3(self) -> S3Settings | None:
        """The bucket whenever CC_S3_BUCKET is set, also with local storage: recordings stored there still play."""
        if not self.s3_bucket:
            return None
        return S3Settings(bucket=self.s3_bucket, prefix=self.s3_prefix, region=self.s3_region,
                          endpoint_url=self.s3_endpoint_url)

    # -- validation across fields --------------------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _host_in_port(cls, values: Any) -> Any:
        """CC_AMI_PORT and CC_AGI_PORT may be HOST:PORT; the host then wins over CC_AMI_HOST/CC_AGI_HOST."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for service in ("ami", "agi"):
            raw = values.get(f"{service}_port")
            if isinstance(raw, str) and ":" in raw:
                try:
                    address = _host_port(raw)
                except ValueError as error:
                    raise ConfigError(f"{_env_name(f'{service}_port')}={raw!r}: {error}") from None
                values[f"{service}_host"], values[f"{service}_port"] = address.host, address.port
        return values

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str, info: ValidationInfo) -> str:
        if not url:
            data_dir = info.data.get("data_dir")
            if data_dir is None:  # refused already; that is the message to read
                return url
            url = f"sqlite:///{data_dir / 'callcenter.sqlite3'}"
        return normalise_database_url(url)

    @field_validator("data_key_file")
    @classmethod
    def _data_key_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            data_dir = info.data.get("data_dir")
            return None if data_dir is None else data_dir / "data-keys.json"
        return _resolved(path)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.rtp_end - self.rtp_start < 10:
            raise ConfigError("CC_RTP_START/CC_RTP_END: the range must hold at least 10 ports")
        if self.recording_storage == "s3" and not self.s3_bucket:
            raise ConfigError("CC_RECORDING_STORAGE=s3 needs CC_S3_BUCKET: the bucket recordings are kept in")
        if not self.s3_bucket:
            stray = [_env_name(name) for name in ("s3_prefix", "s3_region", "s3_endpoint_url")
                     if name in self.model_fields_set and getattr(self, name)]
            if stray:
                raise ConfigError(f"{', '.join(stray)} set without CC_S3_BUCKET: name the bucket, or unset them")
        return self


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _reason(problem: ErrorDetails) -> str:
    """One refusal as ``CC_NAME='value': why`` (without the value when it holds a secret)."""
    cause = problem.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # raised knowing which variables it is about
        return str(cause)
    why = str(cause) if isinstance(cause, ValueError) else None
    if why is None:
        phrase = _PYDANTIC_REASONS.get(problem["type"])
        why = phrase(problem.get("ctx", {})) if phrase else problem["msg"]
    if not problem["loc"]:
        return why
    name = _env_name(str(problem["loc"][0]))
    if isinstance(cause, _SecretValueError):
        return f"{name} {why}"
    return f"{name}={problem['input']!r}: {why}"
