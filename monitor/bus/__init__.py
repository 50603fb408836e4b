"""The bus: one protocol (`Bus`, `Consumer`), an embedded and a Kafka implementation."""

from __future__ import annotations

from monitor.bus.base import AckTracker, Bus, Consumer, Message
from monitor.bus.memory import MemoryBus
from monitor.config import Settings

__all__ = ["AckTracker", "Bus", "Consumer", "MemoryBus", "Message", "make_bus"]


def make_bus(settings: Settings) -> Bus:
    """Kafka when `kafka.bootstrap` is set, else the embedded bus."""
    if settings.uses_kafka:
        from monitor.bus.kafka import KafkaBus

        return KafkaBus(settings.kafka)
    return MemoryBus()
