"""structlog configuration: JSON lines (a human renderer on a TTY), with secrets redacted;
the standard library's records (aiokafka, aiohttp, asyncio) rendered the same way and
rate-limited.

Secrets are removed twice: by key name (`password`, `token`, `secret`, `authorization`,
`api_key`...) and by value, for every secret registered with `register_secret` (config
secrets, webhook secrets, API keys) wherever it appears inside a string, an exception
included.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from pydantic import SecretStr

REDACTED = "**********"
_SECRET_KEYS = re.compile(r"(pass(word)?|secret|token|authorization|api_?key|auth)$", re.I)
_secrets: set[str] = set()


def register_secret(value: str | SecretStr | None) -> None:
    """Scrub this value from every log line from now on (values of 6+ characters)."""
    if value is None:
        return
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if len(raw) >= 6:
        _secrets.add(raw)


# The password of a URL's userinfo (`postgresql://capmon:PASSWORD@db/capmon`).
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.I)


def mask_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


def scrub(text: str) -> str:
    if "://" in text:  # most values are keys, names and numbers: no regex for them
        text = mask_url_passwords(text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    # Log lines reuse a few hundred field names: the pattern runs once per name, not per line.
    return _SECRET_KEYS.search(key) is not None


def _clean(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if _secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _clean(value)
    return event_dict


class RateLimit(logging.Filter):
    """At most `burst` records per logger and message template in `window_s`; the rest are
    dropped and counted, and the count rides on the next record let through (`suppressed`).
    A client library retrying a dead broker otherwise logs the same line a thousand times a
    second."""

    def __init__(self, burst: int = 5, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window_s, self._clock = burst, window_s, clock
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        start, count, dropped = self._seen.get(key, (now, 0, 0))
        if now - start >= self.window_s:
            start, count = now, 0
        if count >= self.burst:
            self._seen[key] = (start, count, dropped + 1)
            return False
        self._seen[key] = (start, count + 1, 0)
        if dropped:
            record.suppressed = dropped
        return True


_stdlib_handler: logging.Handler | None = None


def _route_stdlib(level: int, renderer: Any, stream: Any) -> None:
    """Libraries log through the standard library (aiokafka, aiohttp, asyncio): their
    records become the same one-JSON-object lines, secrets redacted, rate-limited."""
    global _stdlib_handler
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           structlog.processors.TimeStamper(fmt="iso", utc=True),
                           structlog.stdlib.ExtraAdder(allow=["suppressed"])],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, redact_secrets, renderer]))
    handler.addFilter(RateLimit())
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
    root.addHandler(handler)
    # Libraries' info lines (every connection, every rebalance step) are theirs to debug.
    root.setLevel(max(level, logging.WARNING))
    _stdlib_handler = handler


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    human = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer()
    if human:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    _route_stdlib(logging.getLevelNamesMapping()[level.upper()], renderer, stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # Last before rendering, so exception text is scrubbed too.
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
