"""Configuration: one typed tree; unknown keys are errors; secrets never shown."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from capmon.cli import main
from monitor.config import load_settings
from monitor.errors import ConfigError


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert not settings.uses_kafka
    assert settings.store.url.startswith("sqlite+aiosqlite")


def test_env_vars_use_the_documented_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPMON_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    monkeypatch.setenv("CAPMON_STORE_URL", "postgresql+asyncpg://u:p@h/db")
    monkeypatch.setenv("CAPMON_ADMIN_KEY", "op-secret-123")
    monkeypatch.setenv("CAPMON_TWILIO_AUTH_TOKEN", "tw-token-456")
    s = load_settings()
    assert s.uses_kafka and s.kafka.bootstrap == "127.0.0.1:9092"
    assert s.store.url == "postgresql+asyncpg://u:p@h/db"
    assert s.admin.key is not None and s.admin.key.get_secret_value() == "op-secret-123"
    assert s.twilio.auth_token is not None
    assert "tw-token-456" not in repr(s)


def test_toml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "capmon.toml"
    cfg.write_text('[api]\nport = 9000\nhost = "0.0.0.0"\n[log]\nlevel = "debug"\n')
    monkeypatch.setenv("CAPMON_API_PORT", "9100")
    s = load_settings(cfg)
    assert s.api.port == 9100  # environment wins over the file
    assert s.api.host == "0.0.0.0" and s.log.level == "debug"


@pytest.mark.parametrize("text", ['[kafka]\nbootstrapp = "x"\n', '[kafkaa]\nbootstrap = "x"\n'])
def test_unknown_keys_in_the_file_are_errors(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "capmon.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="Extra inputs are not permitted"):
        load_settings(cfg)


def test_unknown_env_var_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPMON_KAFKA_BOOTSTRAPP", "x")
    with pytest.raises(ConfigError, match="CAPMON_KAFKA_BOOTSTRAPP"):
        load_settings()


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPMON_API_PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"api\.port"):
        load_settings()


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_config_show_redacts_every_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "capmon.toml"
    cfg.write_text('[smtp]\npassword = "smtp-pass-789"\n[imap]\npassword = "imap-pass-000"\n'
                   '[kafka]\nsasl_password = "sasl-pass-111"\n')
    monkeypatch.setenv("CAPMON_ADMIN_KEY", "op-secret-123")
    monkeypatch.setenv("CAPMON_TWILIO_AUTH_TOKEN", "tw-token-456")
    assert main(["--config", str(cfg), "config", "show"]) == 0
    out = capsys.readouterr().out
    for secret in ("smtp-pass-789", "imap-pass-000", "sasl-pass-111", "op-secret-123",
                   "tw-token-456"):
        assert secret not in out
    shown = json.loads(out)
    assert shown["smtp"]["password"] == "**********"
    assert shown["admin"]["key"] == "**********"


def test_config_check_reports_errors_on_one_line(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAPMON_NOPE", "1")
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("capmon: unknown configuration variable(s): CAPMON_NOPE")
    assert err.count("\n") == 1


def test_secrets_stay_out_of_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.logging import configure_logging
    from monitor.runtime import register_config_secrets

    monkeypatch.setenv("CAPMON_SMTP_PASSWORD", "smtp-pass-789")
    settings = load_settings()
    register_config_secrets(settings)
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    import structlog

    structlog.get_logger("t").warning(
        "smtp_login_failed", error="535 auth failed for smtp-pass-789",
        password="smtp-pass-789", settings=settings.smtp)
    line = stream.getvalue()
    assert "smtp-pass-789" not in line
    record = json.loads(line)
    assert record["password"] == "**********"
    assert record["error"] == "535 auth failed for **********"
