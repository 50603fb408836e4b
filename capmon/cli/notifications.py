"""`capmon notifications list | show KEY | ack KEY --by NAME`: the delivery ledger from the
operator's shell, each entry with its acknowledgement (who, how, when), and acknowledging with
the ledger's rules (once; at or above its subscription's `ack_severity`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from capmon.cli.tenants import with_store
from monitor import ledger
from monitor.api.notifications import LedgerEntryDetail, LedgerEntryOut, entry_detail, entry_out
from monitor.clock import SystemClock
from monitor.ledger import acks
from monitor.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser("notifications", help="act on the delivery ledger")
    nsub = p.add_subparsers(dest="notifications_command", required=True)
    ls = nsub.add_parser("list", help="the delivery log, newest first")
    ls.add_argument("--tenant", metavar="ID", help="one tenant's (default: every tenant's)")
    ls.add_argument("--subscription", metavar="ID")
    ls.add_argument("--state", action="append", default=[],
                    choices=[s.value for s in ledger.State], help="repeatable")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_list)
    show = nsub.add_parser("show", help="one notification, its attempts and acknowledgement")
    show.add_argument("key")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
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


def _acked(e: LedgerEntryOut) -> str:
    a = e.acknowledgement
    return "-" if a is None else f"acknowledged by {a.by} ({a.via.value}) at {a.at.isoformat()}"


def _list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 500:
        print("capmon notifications list: --limit is 1 to 500", file=sys.stderr)
        return 2

    async def go(store: Store) -> list[LedgerEntryOut]:
        async with store.connect() as conn:
            entries = await ledger.list_entries(
                conn, tenant_id=args.tenant, subscription_id=args.subscription,
                states=args.state, limit=args.limit)
            taken = await acks.acks_of(conn, [e.key for e in entries])
        return [entry_out(e, taken.get(e.key)) for e in entries]

    for e in with_store(args, go):
        if args.json:
            print(e.model_dump_json())
        else:
            print(f"{e.key}\t{e.created_at.isoformat()}\t{e.channel}\t{e.state.value}\t"
                  f"{_acked(e)}\t{e.notification.summary}")
    return 0


def _show(args: argparse.Namespace) -> int:
    async def go(store: Store) -> LedgerEntryDetail | None:
        async with store.connect() as conn:
            entry = await ledger.get(conn, args.key)
            if entry is None:
                return None
            taken = await acks.acks_of(conn, [entry.key])
            return entry_detail(entry, taken.get(entry.key),
                                await ledger.attempts_for(conn, entry.key))

    d = with_store(args, go)
    if d is None:
        print(f"capmon notifications show: no notification {args.key}", file=sys.stderr)
        return 1
    if args.json:
        print(d.model_dump_json())
        return 0
    lines = [("key", d.key), ("summary", d.notification.summary),
             ("subscription", d.subscription_id), ("channel", d.channel),
             ("state", d.state.value), ("created", d.created_at.isoformat()),
             ("delivered", d.delivered_at.isoformat() if d.delivered_at else "-"),
             ("last error", d.last_error or "-"), ("acknowledgement", _acked(d))]
    lines += [(f"attempt {a.attempt_no}",
               f"{a.attempted_at.isoformat()} {a.outcome}"
               + (f" ({a.error})" if a.error else "")) for a in d.attempts]
    for label, value in lines:
        print(f"{label + ':':<17}{value}")
    return 0
