"""The `capmon` command line. Each command lives in its own module with a `register` function.

The CLI is the one place in monitor/ allowed to import producers/ and consumers/: it wires the
roles together (lazily, so `capmon --help` stays fast).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from monitor.errors import CapmonError

# One line per command module; each defines register(subparsers).
COMMAND_MODULES = (
    "capmon.cli.roles",
    "capmon.cli.parse",
    "capmon.cli.topics",
    "capmon.cli.dlq",
    "capmon.cli.db",
    "capmon.cli.config_cmd",
    "capmon.cli.healthcheck",
    "capmon.cli.sce_history",
    "capmon.cli.tenants",
    "capmon.cli.subscriptions",
    "capmon.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capmon", description="Capacity alerts for CCAs: SCE DR events and CAISO notices."
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (see README)")
    parser.add_argument("--version", action="version", version=f"capmon {capmon_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
