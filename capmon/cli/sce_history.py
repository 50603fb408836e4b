"""`capmon sce-history import FILE`: load SCE's DR event history into the store.

Each event becomes an ended (or cancelled) `sce.dr_event` condition with a revision fixed by
the event itself, so importing the same file again changes nothing. The import is one
transaction: a file with an unreadable row imports nothing and says which line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from capmon.cli.roles import settings_from
from monitor.clock import SystemClock
from monitor.errors import ParseError
from monitor.store import Store
from monitor.store import conditions as stored


def register(sub: Any) -> None:
    p = sub.add_parser("sce-history", help="SCE demand-response event history")
    hsub = p.add_subparsers(dest="sce_history_command", required=True)
    imp = hsub.add_parser("import", help="import an SCE event-history CSV into the store")
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=_import)


async def import_history(store: Store, raw: bytes, now: datetime) -> tuple[int, int, int]:
    """(new, updated, unchanged) condition counts. Raises ParseError on a bad file."""
    from producers.sce_history import history_conditions

    conditions = history_conditions(raw)
    new = updated = unchanged = 0
    async with store.begin() as conn:
        for c in conditions:
            previous = await stored.record(conn, c, now)
            if previous is None:
                new += 1
            elif previous.revision < c.revision:
                updated += 1
            else:
                unchanged += 1
    return new, updated, unchanged


def _import(args: argparse.Namespace) -> int:
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        print(f"capmon sce-history: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    settings = settings_from(args)

    async def go() -> tuple[int, int, int]:
        store = Store(settings.store.url, echo=settings.store.echo)
        try:
            await store.upgrade()
            return await import_history(store, raw, SystemClock().now())
        finally:
            await store.close()

    try:
        new, updated, unchanged = asyncio.run(go())
    except ParseError as exc:
        print(f"capmon sce-history: {args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"{new + updated + unchanged} events: {new} new, {updated} updated, "
          f"{unchanged} unchanged")
    return 0
