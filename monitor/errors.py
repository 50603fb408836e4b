"""capmon's error hierarchy.

The code that fails decides whether a retry may help (`retriable`) and gives a bounded `reason`
that doubles as a metric label, so callers never parse messages to decide what to do.
"""

from __future__ import annotations

from typing import ClassVar


class CapmonError(Exception):
    """Base of every error capmon raises on purpose."""

    default_reason: ClassVar[str] = "error"

    def __init__(self, message: str, *, reason: str | None = None, retriable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason or self.default_reason
        self.retriable = retriable


class ConfigError(CapmonError):
    default_reason = "config"


class SourceError(CapmonError):
    default_reason = "source"


class FetchError(SourceError):
    """The source could not be reached or answered with an error status."""

    default_reason = "fetch"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        retriable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason, retriable=retriable)
        self.retry_after = retry_after


class ParseError(SourceError):
    """The source answered, but what it said is not in the format we know.

    Never read a ParseError as "nothing is happening": it is counted and turned into a
    `source.health` condition by the engine.
    """

    default_reason = "parse"


class BusError(CapmonError):
    default_reason = "bus"


class StoreError(CapmonError):
    default_reason = "store"


class StoreConflict(StoreError):
    """A write the database refused (a unique or foreign key constraint)."""

    default_reason = "conflict"
