"""The bus: one protocol (`Bus`, `Subscription`), an embedded and a Kafka implementation."""

from __future__ import annotations

from monitor.bus.base import AckTracker, Bus, Message, Subscription
from monitor.bus.memory import MemoryBus
from monitor.config import Settings

__all__ = ["AckTracker", "Bus", "MemoryBus", "Message", "Subscription", "make_bus"]


def make_bus(settings: Settings) -> Bus:
    """Kafka when `kafka.bootstrap` is set, else the embedded bus."""
    if settings.uses_kafka:
        from monitor.bus.kafka import KafkaBus

        return KafkaBus(settings.kafka)
    return MemoryBus()
