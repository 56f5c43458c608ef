from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcenter.config import (
    ENV_PREFIX,
    PROJECT_ROOT,
    ConfigError,
    HostPort,
    S3Settings,
    Settings,
    normalise_database_url,
)

VARIABLES = {f"{ENV_PREFIX}{field.upper()}": field for field in Settings.model_fields}


def test_defaults_match_the_documented_ones(tmp_path: Path) -> None:
    settings = Settings.from_env({"CC_DATA_DIR": str(tmp_path)})
    assert settings.http == HostPort("127.0.0.1", 8080)
    assert settings.sip == HostPort("127.0.0.1", 5060)
    assert settings.ami == HostPort("127.0.0.1", 5038)
    assert settings.agi == HostPort("127.0.0.1", 4573)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'callcenter.sqlite3'}"
    assert settings.emergency_number == "120"
    assert settings.admin_password is None


def test_ports_accept_bare_port_or_host_and_port() -> None:
    settings = Settings.from_env(
        {"CC_AMI_PORT": "6038", "CC_AGI_PORT": "127.0.0.2:5573", "CC_SIP_BIND": "0.0.0.0:5070"}
    )
    assert settings.ami == HostPort("127.0.0.1", 6038)
    assert settings.agi == HostPort("127.0.0.2", 5573)
    assert settings.sip == HostPort("0.0.0.0", 5070)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CC_HTTP_PORT", "eighty", "CC_HTTP_PORT"),
        ("CC_SIP_BIND", "5060", "HOST:PORT"),
        ("CC_AMI_PORT", "70000", "out of range"),
        ("CC_DATABASE_URL", "mysql://x/y", "postgresql:// or sqlite://"),
        ("CC_EMERGENCY_NUMBER", "12O", "digits only"),
        ("CC_ASTERISK_INSTANCE", "../etc", "letters, digits"),
        ("CC_LOG_LEVEL", "loud", "CC_LOG_LEVEL"),
        ("CC_RTP_END", "10005", "at least 10 ports"),
        ("CC_RECORD_QUEUES", "hotline,sales", "unknown queue"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env({name: value})


def test_database_urls_map_to_async_drivers() -> None:
    assert normalise_database_url("postgresql://127.0.0.1:5432/test") == "postgresql+asyncpg://127.0.0.1:5432/test"
    assert normalise_database_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert normalise_database_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [("CC_CALL_LOG_RETENTION_DAYS", "1094"), ("CC_RECORDING_RETENTION_DAYS", "30"), ("CC_SOS_ANSWER_TIMEOUT", "2"),
     ("CC_SOS_FALLBACK_DIAL", "Local/123@default"), ("CC_SOS_FALLBACK_DIAL", "PJSIP/9000&SIP/x")],
)
def test_retention_floors_and_sos_fallback_are_enforced(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_sos_defaults_follow_gbt_33358_and_the_seed() -> None:
    settings = Settings.from_env({"CC_SOS_FALLBACK_DIAL": "PJSIP/9000&PJSIP/9001"})
    assert settings.sos_answer_timeout == 15
    assert settings.call_log_retention_days >= 3 * 365
    assert settings.recording_retention_days >= 90
    assert settings.sos_fallback_dial == "PJSIP/9000&PJSIP/9001"


def test_expired_call_logs_are_archived_unless_purge_is_chosen() -> None:
    assert Settings.from_env({}).call_log_expiry == "archive"
    assert Settings.from_env({"CC_CALL_LOG_EXPIRY": " Purge "}).call_log_expiry == "purge"
    with pytest.raises(ConfigError, match="CC_CALL_LOG_EXPIRY='delete': one of archive, purge"):
        Settings.from_env({"CC_CALL_LOG_EXPIRY": "delete"})


def test_answered_calls_of_both_caller_queues_are_recorded_unless_configured_otherwise() -> None:
    assert Settings.from_env({}).record_queues == {"emergency", "hotline"}
    assert Settings.from_env({"CC_RECORD_QUEUES": " hotline "}).record_queues == {"hotline"}
    assert Settings.from_env({"CC_RECORD_QUEUES": "none"}).record_queues == frozenset()


def test_recordings_are_stored_locally_unless_s3_is_chosen_with_a_bucket() -> None:
    assert (Settings.from_env({}).recording_storage, Settings.from_env({}).s3) == ("local", None)
    settings = Settings.from_env({"CC_RECORDING_STORAGE": "S3", "CC_S3_BUCKET": "cc-recordings",
                                  "CC_S3_PREFIX": "/city/recordings", "CC_S3_REGION": "cn-north-1",
                                  "CC_S3_ENDPOINT_URL": "http://minio:9000/"})
    assert settings.recording_storage == "s3"
    assert settings.s3 == S3Settings(bucket="cc-recordings", prefix="city/recordings/", region="cn-north-1",
                                     endpoint_url="http://minio:9000")
    defaults = Settings.from_env({"CC_RECORDING_STORAGE": "s3", "CC_S3_BUCKET": "cc-recordings"}).s3
    assert defaults == S3Settings(bucket="cc-recordings", prefix="recordings/", region=None, endpoint_url=None)
    # A bucket with local storage: new recordings stay local, those already in S3 still play.
    assert Settings.from_env({"CC_S3_BUCKET": "cc-recordings"}).recording_storage == "local"
    assert Settings.from_env({"CC_S3_BUCKET": "cc-recordings", "CC_S3_PREFIX": ""}).s3.prefix == ""


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CC_RECORDING_STORAGE": "nfs"}, "CC_RECORDING_STORAGE='nfs': one of local, s3"),
        ({"CC_RECORDING_STORAGE": "s3"}, "CC_RECORDING_STORAGE=s3 needs CC_S3_BUCKET"),
        ({"CC_S3_REGION": "eu-central-1"}, "CC_S3_REGION set without CC_S3_BUCKET"),
        ({"CC_S3_BUCKET": "Recordings_2026"}, "CC_S3_BUCKET='Recordings_2026'"),
        ({"CC_S3_BUCKET": "cc"}, "CC_S3_BUCKET='cc': 3-63"),
        ({"CC_S3_BUCKET": "ccc", "CC_S3_PREFIX": "a/../b"}, "CC_S3_PREFIX='a/../b'"),
        ({"CC_S3_BUCKET": "ccc", "CC_S3_REGION": "EU Central"}, "CC_S3_REGION"),
        ({"CC_S3_BUCKET": "ccc", "CC_S3_ENDPOINT_URL": "minio:9000"}, "expected http(s)://host[:port]"),
        ({"CC_S3_BUCKET": "ccc", "CC_S3_ENDPOINT_URL": "http://minio:99999"}, "port out of range"),
        ({"CC_S3_BUCKET": "ccc", "CC_S3_ENDPOINT_URL": "http://key:secret@minio:9000"}, "holds credentials"),
        ({"CC_S3_BUCKET": "ccc", "CC_S3_ACCESS_KEY": "x"}, "set AWS_ACCESS_KEY_ID instead"),
        ({"CC_S3_BUCKET": "ccc", "CC_S3_ENDPOINT": "http://minio:9000"}, "set CC_S3_ENDPOINT_URL instead"),
    ],
)
def test_bad_s3_settings_are_refused_with_the_variable_named(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    assert fragment in str(refused.value)


def test_today_is_counted_in_the_centres_time_zone() -> None:
    assert Settings.from_env({}).timezone == "Asia/Shanghai"
    assert Settings.from_env({"CC_TIMEZONE": "Europe/Berlin"}).timezone == "Europe/Berlin"
    for bad in ("Mars/Olympus", "", "../../etc/passwd", "Asia/Shanghai "):
        with pytest.raises(ConfigError, match=r"CC_TIMEZONE=.*not a known time zone"):
            Settings.from_env({"CC_TIMEZONE": bad})


def test_the_given_mapping_is_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_HTTP_PORT", "9090")
    monkeypatch.setenv("CC_WRAPUP_SECONDS", "nonsense")
    assert Settings.from_env({}).http == HostPort("127.0.0.1", 8080)
    assert Settings.from_env({"CC_HTTP_HOST": "0.0.0.0"}).http == HostPort("0.0.0.0", 8080)
    with pytest.raises(ConfigError, match="CC_WRAPUP_SECONDS='nonsense': not an integer"):
        Settings.from_env()


def test_a_bare_port_listens_on_its_host_variable_and_host_port_wins_over_it() -> None:
    assert Settings.from_env({"CC_AMI_HOST": "10.0.0.5"}).ami == HostPort("10.0.0.5", 5038)
    assert Settings.from_env({"CC_AGI_HOST": "10.0.0.5", "CC_AGI_PORT": "10.0.0.6:4000"}).agi == HostPort(
        "10.0.0.6", 4000)
    with pytest.raises(ConfigError, match=r"CC_AGI_PORT='10.0.0.6:0': port out of range 1-65535"):
        Settings.from_env({"CC_AGI_PORT": "10.0.0.6:0"})


def test_every_refused_variable_is_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"CC_HTTP_PORT": "eighty", "CC_API_TOKEN_TTL": "59", "CC_WRAPUP_SECONDS": "601",
                           "CC_COOKIE_SECURE": "maybe"})
    assert str(refused.value) == ("CC_HTTP_PORT='eighty': not a port number; "
                                  "CC_API_TOKEN_TTL='59': must be at least 60; "
                                  "CC_COOKIE_SECURE='maybe': one of 1/0, true/false, yes/no; "
                                  "CC_WRAPUP_SECONDS='601': must be at most 600")


def test_a_refused_endpoint_url_with_credentials_is_not_repeated() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"CC_S3_BUCKET": "ccc", "CC_S3_ENDPOINT_URL": "http://key:hunter2@minio:9000"})
    assert "hunter2" not in str(refused.value)


def test_replace_changes_settings_by_name() -> None:
    settings = Settings.from_env({"CC_S3_BUCKET": "cc-recordings"})
    assert settings.replace(trunk_uri="sip:127.0.0.1:5099").trunk_uri == "sip:127.0.0.1:5099"
    assert settings.replace(s3_bucket="").s3 is None
    with pytest.raises(TypeError, match="not a setting: s3"):
        settings.replace(s3=None)


def test_every_variable_says_what_it_means() -> None:
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_the_readme_table_lists_every_variable_with_its_default() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (`CC_[^|]+) \| ([^|]+) \|", readme, flags=re.MULTILINE)
    defaults = Settings.from_env({})
    documented: set[str] = set()
    for names_cell, defaults_cell in rows:
        names = re.findall(r"`(CC_[A-Z0-9_]+)`", names_cell)
        values = [value.strip() for value in defaults_cell.split(" / ")]
        documented.update(names)
        for name, value in zip(names, values if len(values) == len(names) else values * len(names), strict=True):
            number = re.fullmatch(r"`(\d+)`", value)
            if name in VARIABLES and number:
                actual = getattr(defaults, VARIABLES[name])
                assert str(int(actual) if isinstance(actual, bool) else actual) == number[1], name
    # CC_DEBIAN_MIRROR is read by the Asterisk installer (asterisk.runtime), not by the platform's settings.
    assert documented - {"CC_DEBIAN_MIRROR"} == set(VARIABLES)
