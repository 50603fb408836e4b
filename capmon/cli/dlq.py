"""`capmon dlq list | replay`: the records consumers gave up on, and putting them back.

Dead letters live on the bus (monitor/bus/dead_letters.py). On Kafka this command reads the
dead letter topic directly; the embedded bus keeps its topics inside the running process,
where only that process can see them (its log has each one as `record_dead_lettered`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from capmon.cli.roles import settings_from
from monitor.bus.dead_letters import DeadLetter, list_dead_letters, replay
from monitor.errors import ConfigError
from monitor.topics import CONDITIONS_DLQ


def register(sub: Any) -> None:
    p = sub.add_parser("dlq", help="list or replay dead-lettered records (Kafka)")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    ls = dsub.add_parser("list", help="print every dead letter: where from, why, when")
    ls.add_argument("--topic", default=CONDITIONS_DLQ, help=f"default {CONDITIONS_DLQ}")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_list)
    rp = dsub.add_parser("replay", help="publish dead letters onto their topics again")
    rp.add_argument("--topic", default=CONDITIONS_DLQ, help=f"default {CONDITIONS_DLQ}")
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--position", action="append", metavar="PARTITION:OFFSET",
                       help="a dead letter's position, as `list` prints it (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter on the topic")
    rp.set_defaults(func=_replay)


async def _letters(args: argparse.Namespace) -> tuple[Any, list[DeadLetter]]:
    from monitor.bus.kafka import KafkaBus

    kafka = settings_from(args).kafka
    if not kafka.bootstrap:
        raise ConfigError("dead letters are read from Kafka (set CAPMON_KAFKA_BOOTSTRAP); the "
                          "embedded bus keeps them inside the running capmon, which logs each "
                          "as record_dead_lettered")
    bus = KafkaBus(kafka)
    await bus.start()
    try:
        return bus, await list_dead_letters(bus, args.topic)
    except BaseException:
        await bus.close()
        raise


def _row(d: DeadLetter) -> dict[str, Any]:
    return {"position": d.position, "key": d.key, "from": d.origin, "group": d.group,
            "attempts": d.attempts, "at": d.at, "error": d.error}


def _list(args: argparse.Namespace) -> int:
    async def go() -> list[DeadLetter]:
        bus, letters = await _letters(args)
        await bus.close()
        return letters

    letters = asyncio.run(go())
    for d in letters:
        if args.json:
            print(json.dumps(_row(d)))
        else:
            print(f"{d.position}\t{d.key}\tfrom {d.origin or '-'}\t{d.attempts or '-'} "
                  f"tries\t{d.at or '-'}\t{d.error or ''}")
    if not args.json:
        print(f"{len(letters)} dead letter(s) on {args.topic}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    async def go() -> tuple[int, list[str]]:
        bus, letters = await _letters(args)
        try:
            by_position = {d.position: d for d in letters}
            wanted = letters if args.all else [by_position[p] for p in args.position
                                               if p in by_position]
            missing = [] if args.all else [p for p in args.position if p not in by_position]
            return await replay(bus, wanted), missing
        finally:
            await bus.close()

    count, missing = asyncio.run(go())
    print(f"replayed {count} record(s) onto their topics")
    for p in missing:
        print(f"capmon dlq replay: no dead letter at {p} on {args.topic}")
    return 1 if missing else 0
