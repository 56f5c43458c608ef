"""CC_SIP_TLS_*: a certificate and its key together or neither, each refusal naming the variable (and the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config import ConfigError, HostPort, Settings
from tests.tls import CertificateFiles, self_signed_certificate


@pytest.fixture
def pair(tmp_path: Path) -> CertificateFiles:
    return self_signed_certificate(tmp_path / "tls")


def _settings(pair: CertificateFiles, **env: str) -> Settings:
    return Settings.from_env({"CC_SIP_TLS_CERT": str(pair.cert), "CC_SIP_TLS_KEY": str(pair.key), **env})


def test_tls_is_off_by_default_and_listens_on_the_sip_host_when_configured(pair: CertificateFiles) -> None:
    assert Settings.from_env({}).sip_tls is None
    settings = _settings(pair, CC_SIP_BIND="0.0.0.0:5070")
    assert settings.sip_tls == HostPort("0.0.0.0", 5061)
    assert settings.sip_tls_required is False
    assert _settings(pair, CC_SIP_TLS_PORT="5071", CC_SIP_TLS_REQUIRED="1").sip_tls == HostPort("127.0.0.1", 5071)


@pytest.mark.parametrize(("given", "missing"), [("CC_SIP_TLS_CERT", "CC_SIP_TLS_KEY"),
                                                ("CC_SIP_TLS_KEY", "CC_SIP_TLS_CERT")])
def test_a_certificate_without_its_key_or_a_key_without_its_certificate_is_refused(
        pair: CertificateFiles, given: str, missing: str) -> None:
    path = pair.cert if given == "CC_SIP_TLS_CERT" else pair.key
    with pytest.raises(ConfigError, match=f"{given} is set but {missing} is not"):
        Settings.from_env({given: str(path)})


@pytest.mark.parametrize("env", [{"CC_SIP_TLS_REQUIRED": "1"}, {"CC_SIP_TLS_PORT": "5071"}])
def test_tls_options_without_a_certificate_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=f"{next(iter(env))} set without CC_SIP_TLS_CERT and CC_SIP_TLS_KEY"):
        Settings.from_env(env)
    assert Settings.from_env({"CC_SIP_TLS_REQUIRED": "0", "CC_SIP_TLS_CERT": "", "CC_SIP_TLS_KEY": ""}).sip_tls is None


def test_missing_unreadable_and_foreign_files_are_named(pair: CertificateFiles, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CC_SIP_TLS_CERT='.*/nowhere\.crt': no such file"):
        _settings(CertificateFiles(tmp_path / "nowhere.crt", pair.key))
    with pytest.raises(ConfigError, match=r"CC_SIP_TLS_KEY='.*/tls': a directory"):
        _settings(CertificateFiles(pair.cert, pair.key.parent))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    with pytest.raises(ConfigError, match=r"CC_SIP_TLS_CERT=.*: not a PEM certificate"):
        _settings(CertificateFiles(not_pem, pair.key))
    with pytest.raises(ConfigError, match=r"CC_SIP_TLS_KEY=.*: not a PEM private key"):
        _settings(CertificateFiles(pair.cert, not_pem))
    other = self_signed_certificate(tmp_path / "other")
    with pytest.raises(ConfigError, match=r"CC_SIP_TLS_KEY=.*: not the private key of CC_SIP_TLS_CERT"):
        _settings(CertificateFiles(pair.cert, other.key))


def test_a_key_readable_by_everyone_or_encrypted_is_refused_without_repeating_it(pair: CertificateFiles,
                                                                                   tmp_path: Path) -> None:
    pair.key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"CC_SIP_TLS_KEY=.*: readable by every user \(mode 0644\)"):
        _settings(pair)
    pair.key.chmod(0o640)
    assert _settings(pair).sip_tls is not None
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pair.key.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"passphrase")))
    encrypted.chmod(0o600)
    with pytest.raises(ConfigError, match=r"CC_SIP_TLS_KEY=.*: encrypted") as refused:
        _settings(CertificateFiles(pair.cert, encrypted))
    assert "PRIVATE KEY" not in str(refused.value)

