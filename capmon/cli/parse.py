"""`capmon parse SOURCE FILE`: run one parser on a saved response, print conditions as JSON lines.

Exit 0 on success; exit 1 with a one-line reason on input the parser rejects. The parsers are
the pure functions the producers use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.errors import ParseError
from monitor.events import Condition
from producers import (
    caiso_demand,
    caiso_flex,
    caiso_notices,
    caiso_oasis,
    caiso_ra,
    caiso_stats,
    sce_api,
    sce_history,
    sce_html,
)

Parser = Callable[[bytes, datetime], list[Condition]]

# SOURCE name -> its parser: the saved response and the time it was fetched.
PARSERS: dict[str, Parser] = {
    "caiso-stats": caiso_stats.parse,
    "caiso-demand": caiso_demand.parse,
    "caiso-flex": caiso_flex.parse,
    "caiso-oasis": caiso_oasis.parse,
    "caiso-ra-outlook": caiso_ra.parse,
    "caiso-notice": caiso_notices.parse,
    "sce-dr-json": sce_api.parse_event_store_conditions,
    "sce-dr-html": sce_html.parse_status_page_conditions,
    "sce-history": sce_history.parse_history_conditions,
}


def register(sub: Any) -> None:
    p = sub.add_parser("parse", help="run one source parser on a saved response")
    p.add_argument("source", choices=sorted(PARSERS) or None, metavar="SOURCE",
                   help="one of: " + ", ".join(sorted(PARSERS)))
    p.add_argument("file", type=Path)
    p.add_argument("--fetched-at", type=datetime.fromisoformat, default=None,
                   help="the fetch time to assume (ISO 8601 with offset; default now)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.source not in PARSERS:
        print(f"capmon parse: unknown source {args.source!r}", file=sys.stderr)
        return 2
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        print(f"capmon parse: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    fetched_at = args.fetched_at or datetime.now(UTC)
    if fetched_at.tzinfo is None:
        print("capmon parse: --fetched-at needs a UTC offset", file=sys.stderr)
        return 2
    try:
        conditions = PARSERS[args.source](raw, fetched_at)
    except ParseError as exc:
        # One line whatever the parser put in its message (it may quote the input).
        print(f"capmon parse: {args.source}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    for condition in conditions:
        sys.stdout.write(condition.to_json() + "\n")
    return 0
