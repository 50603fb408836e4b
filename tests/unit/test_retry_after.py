"""Retry-After as the sources' servers and webhook receivers send it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from monitor.retry_after import parse_retry_after

NOW = datetime(2022, 9, 6, 17, 26, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), (" 7 ", 7.0), (format_datetime(NOW + timedelta(minutes=2)), 120.0),
    ("Tue, 06 Sep 2022 17:27:00 GMT", 60.0),
    (format_datetime(NOW - timedelta(minutes=2)), 0.0),  # a date gone by: no wait
    ("Tue, 06 Sep 2022 17:27:00", None),  # a date without a zone is not an HTTP date
    ("-5", None), ("soon", None), ("", None), (None, None),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected
