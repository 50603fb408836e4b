"""Consumer lag measured from outside the consumers, the way Burrow or kafka-lag-exporter do.

A consumer that is dead or stuck cannot report its own lag, yet that is exactly when the lag
alert must fire; so the API role measures every capmon group's committed offsets against the
partitions' end offsets and exports `capmon_bus_consumer_lag_records{topic, group}`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from monitor.bus.kafka import client_options
from monitor.config import KafkaSettings
from monitor.errors import BusError

log = structlog.get_logger(__name__)

Lag = dict[tuple[str, str], int]


class KafkaLagProbe:
    """Committed-offset lag of the groups whose id starts with `group_prefix`, on `topics`."""

    def __init__(self, settings: KafkaSettings, topics: Sequence[str],
                 group_prefix: str = "capmon") -> None:
        self.settings = settings
        self.topics = frozenset(topics)
        self.group_prefix = group_prefix
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(**client_options(self.settings))
            consumer = AIOKafkaConsumer(**client_options(self.settings), group_id=None,
                                        enable_auto_commit=False)
            await admin.start()
            await consumer.start()
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def measure(self) -> Lag:
        try:
            admin, consumer = await self._clients()
            groups = [g[0] for g in await admin.list_consumer_groups()
                      if str(g[0]).startswith(self.group_prefix)]
            committed: dict[str, dict[TopicPartition, int]] = {}
            for group in sorted(groups):
                offsets = await admin.list_consumer_group_offsets(group)
                committed[group] = {tp: om.offset for tp, om in offsets.items()
                                    if tp.topic in self.topics and om.offset >= 0}
            wanted = sorted({tp for tps in committed.values() for tp in tps})
            ends = await consumer.end_offsets(wanted) if wanted else {}
        except KafkaError as exc:
            await self.close()
            raise BusError(f"consumer lag unavailable: {exc}", reason="connect",
                           retriable=True) from exc
        lag: Lag = defaultdict(int)
        for group, tps in committed.items():
            for tp, offset in tps.items():
                lag[(tp.topic, group)] += max(0, ends.get(tp, offset) - offset)
        return dict(lag)

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()
