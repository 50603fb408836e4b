"""`capmon topics create | list`: capmon's topics (monitor.topics) on Kafka."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from capmon.cli.roles import settings_from
from monitor.errors import ConfigError
from monitor.topics import TOPIC_SPECS


def register(sub: Any) -> None:
    p = sub.add_parser("topics", help="create or list capmon's Kafka topics")
    tsub = p.add_subparsers(dest="topics_command", required=True)
    c = tsub.add_parser("create", help="create missing topics with explicit partitions/retention")
    c.add_argument("--bootstrap", help="host:port (default: CAPMON_KAFKA_BOOTSTRAP)")
    c.set_defaults(func=_create)
    ls = tsub.add_parser("list", help="print the topic specifications")
    ls.set_defaults(func=_list)


def _create(args: argparse.Namespace) -> int:
    from monitor.bus.kafka import KafkaBus

    settings = settings_from(args)
    kafka = settings.kafka
    if args.bootstrap:
        kafka = kafka.model_copy(update={"bootstrap": args.bootstrap})
    if not kafka.bootstrap:
        raise ConfigError("no Kafka bootstrap: set CAPMON_KAFKA_BOOTSTRAP or --bootstrap")
    asyncio.run(KafkaBus(kafka).ensure_topics(TOPIC_SPECS))
    _list(args)
    return 0


def _list(_args: argparse.Namespace) -> int:
    for s in TOPIC_SPECS:
        days = s.retention_ms / 86_400_000
        print(f"{s.name}\tpartitions={s.partitions}\tretention={days:g}d\tcleanup={s.cleanup_policy}")
    return 0
