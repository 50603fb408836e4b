"""capmon's topics (conditions by family, health, notifications, dead letters), with how they
are created on Kafka."""

from __future__ import annotations

from dataclasses import dataclass

CAISO = "capmon.caiso.v1"
SCE = "capmon.sce.v1"
HEALTH = "capmon.health.v1"
NOTIFICATIONS = "capmon.notifications.v1"
DLQ = "capmon.notifications.dlq.v1"
# Condition records decide gave up on (monitor/bus/dead_letters.py), replayable.
CONDITIONS_DLQ = "capmon.conditions.dlq.v1"

CONDITION_TOPICS: tuple[str, ...] = (CAISO, SCE, HEALTH)

_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    # Conditions are compacted as well as deleted: the latest revision of each id survives
    # retention, so a new decide group can rebuild state from the topic if the store is lost.
    cleanup_policy: str


TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(CAISO, partitions=6, retention_ms=30 * _DAY_MS, cleanup_policy="compact,delete"),
    TopicSpec(SCE, partitions=6, retention_ms=30 * _DAY_MS, cleanup_policy="compact,delete"),
    TopicSpec(HEALTH, partitions=3, retention_ms=7 * _DAY_MS, cleanup_policy="compact,delete"),
    # Notifications are not compacted: every notification is its own key-distinct message,
    # keyed by subscription id for per-subscriber order.
    TopicSpec(NOTIFICATIONS, partitions=12, retention_ms=7 * _DAY_MS, cleanup_policy="delete"),
    TopicSpec(DLQ, partitions=3, retention_ms=90 * _DAY_MS, cleanup_policy="delete"),
    TopicSpec(CONDITIONS_DLQ, partitions=3, retention_ms=90 * _DAY_MS, cleanup_policy="delete"),
)
