"""`capmon db upgrade | current`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from capmon.cli.roles import settings_from
from monitor.store import Store


def register(sub: Any) -> None:
    p = sub.add_parser("db", help="database migrations")
    dsub = p.add_subparsers(dest="db_command", required=True)
    up = dsub.add_parser("upgrade", help="apply migrations (default: to every head)")
    up.add_argument("target", nargs="?", default="heads")
    up.set_defaults(func=_upgrade)
    cur = dsub.add_parser("current", help="print the applied revision(s)")
    cur.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace) -> int:
    async def go() -> None:
        store = Store(settings_from(args).store.url)
        try:
            await store.upgrade(args.target)
            print("at", ", ".join(sorted(await store.current_revisions())))
        finally:
            await store.close()

    asyncio.run(go())
    return 0


def _current(args: argparse.Namespace) -> int:
    async def go() -> int:
        store = Store(settings_from(args).store.url)
        try:
            revs = await store.current_revisions()
            print(", ".join(sorted(revs)) or "(empty)")
            return 1 if await store.pending_migrations() else 0
        finally:
            await store.close()

    return asyncio.run(go())
