"""Structured logging: JSON lines, bound context, secrets scrubbed by key and by value."""

from __future__ import annotations

import io
import json

import structlog
from pydantic import SecretStr

from monitor.logging import configure_logging, register_secret


def log_line(**fields: object) -> dict[str, object]:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    structlog.get_logger("t").info("evt", **fields)
    parsed: dict[str, object] = json.loads(stream.getvalue())
    return parsed


def test_json_lines_with_context() -> None:
    rec = log_line(condition_id="caiso.notice:202202696", notification_key="abc")
    assert rec["event"] == "evt" and rec["level"] == "info"
    assert rec["condition_id"] == "caiso.notice:202202696" and "timestamp" in rec


def test_secret_keys_are_redacted_even_nested() -> None:
    rec = log_line(headers={"Authorization": "Bearer cm_abc", "X-Other": "ok"},
                   api_key="cm_abc", webhook_secret="whsec_abc", auth_token=SecretStr("x"))
    assert rec["api_key"] == "**********" and rec["webhook_secret"] == "**********"
    assert rec["auth_token"] == "**********"
    assert rec["headers"] == {"Authorization": "**********", "X-Other": "ok"}


def test_registered_secret_values_are_scrubbed_anywhere() -> None:
    register_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    rec = log_line(error="signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw failed",
                   items=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    assert "MfKQ9r8" not in json.dumps(rec)


def test_exceptions_are_scrubbed_too() -> None:
    register_secret("hunter2-very-secret")
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        raise RuntimeError("login failed with hunter2-very-secret")
    except RuntimeError:
        structlog.get_logger("t").exception("boom")
    assert "hunter2-very-secret" not in stream.getvalue()
    assert "login failed with **********" in stream.getvalue()
