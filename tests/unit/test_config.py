from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config import ConfigError, HostPort, Settings, normalise_database_url


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


def test_answered_calls_of_both_caller_queues_are_recorded_unless_configured_otherwise() -> None:
    assert Settings.from_env({}).record_queues == {"emergency", "hotline"}
    assert Settings.from_env({"CC_RECORD_QUEUES": " hotline "}).record_queues == {"hotline"}
    assert Settings.from_env({"CC_RECORD_QUEUES": "none"}).record_queues == frozenset()
