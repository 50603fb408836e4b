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


def test_library_records_are_json_lines_rate_limited_with_a_count() -> None:
    import logging

    from monitor.logging import RateLimit

    stream = io.StringIO()
    configure_logging("info", "json", stream)
    register_secret("sasl-password-123")
    lib = logging.getLogger("aiokafka.client")
    for _ in range(1200):  # a dead broker, retried in a tight loop
        lib.error("Unable connect to node with id %s: %s", 1, "refused sasl-password-123")
    logging.getLogger("aiokafka.conn").info("connected")  # a library's info is its own
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 5, "at most 5 of one message a minute"
    first = lines[0]
    assert first["event"] == "Unable connect to node with id 1: refused **********"
    assert (first["level"], first["logger"]) == ("error", "aiokafka.client")
    assert "timestamp" in first

    now = [0.0]
    limit = RateLimit(burst=2, window_s=60, clock=lambda: now[0])
    rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "same %s", (1,), None)
    assert [limit.filter(rec) for _ in range(5)] == [True, True, False, False, False]
    now[0] = 61.0
    assert limit.filter(rec) and rec.suppressed == 3  # type: ignore[attr-defined]


def test_a_url_password_is_masked_in_any_line() -> None:
    rec = log_line(error="cannot connect to postgresql+asyncpg://capmon:hunter2x@db/capmon",
                   url="amqp://u:p4ss@broker:5672/")
    assert "hunter2x" not in json.dumps(rec) and "p4ss" not in json.dumps(rec)
    assert rec["error"] == "cannot connect to postgresql+asyncpg://capmon:**********@db/capmon"
