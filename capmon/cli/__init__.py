"""The `capmon` command line. Each command lives in its own module with a `register` function.

The demo command alone imports what it runs (capmon/demo/run.py) only when it runs: the demo's
sinks need the `demo` extra, which a production install leaves out.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from capmon.cli import (
    config_cmd,
    db,
    demo,
    dlq,
    escalations,
    healthcheck,
    notifications,
    parse,
    roles,
    sce_history,
    silences,
    subscriptions,
    tenants,
    topics,
)
from monitor.errors import CapmonError

# Each adds its command to the subparsers, in the order `capmon --help` lists them.
COMMANDS: tuple[Callable[[Any], None], ...] = (
    roles.register,
    parse.register,
    topics.register,
    dlq.register,
    db.register,
    config_cmd.register,
    healthcheck.register,
    sce_history.register,
    tenants.register,
    subscriptions.register,
    silences.register,
    escalations.register,
    notifications.register,
    demo.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capmon", description="Capacity alerts for CCAs: SCE DR events and CAISO notices."
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (see README)")
    parser.add_argument("--version", action="version", version=f"capmon {capmon_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def capmon_version() -> str:
    try:
        return version("capmon")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except CapmonError as exc:
        print(f"capmon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`capmon parse ... | head`): stop quietly, as `cat` would.
        # Python would still flush stdout at exit and fail again, so point it at devnull.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
