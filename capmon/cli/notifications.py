"""`capmon notifications ack KEY --by NAME`: acknowledge a notification from the operator's
shell, with the ledger's rules (once; at or above its subscription's `ack_severity`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from capmon.cli.tenants import with_store
from monitor.clock import SystemClock
from monitor.ledger import acks
from monitor.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser("notifications", help="act on the delivery ledger")
    nsub = p.add_subparsers(dest="notifications_command", required=True)
    ack = nsub.add_parser("ack", help="acknowledge a notification: someone has it")
    ack.add_argument("key", help="the notification's key (see /v1/notifications)")
    ack.add_argument("--by", required=True, help="who has it")
    ack.add_argument("--json", action="store_true")
    ack.set_defaults(func=_ack)


def _ack(args: argparse.Namespace) -> int:
    async def go(store: Store) -> acks.Ack | acks.AckRefused:
        try:
            async with store.begin() as conn:
                return await acks.acknowledge(conn, args.key, args.by, acks.Via.CLI,
                                              SystemClock().now())
        except acks.AckRefused as refused:
            return refused

    done = with_store(args, go)
    if isinstance(done, acks.AckRefused):
        print(f"capmon notifications ack: {done.detail}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"key": done.key, "by": done.by, "via": done.via.value,
                          "at": done.at.isoformat()}))
    else:
        print(f"acknowledged {done.key} by {done.by} at {done.at.isoformat()}")
    return 0
