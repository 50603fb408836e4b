"""`capmon config show | check`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from monitor.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="show or check the effective configuration")
    csub = p.add_subparsers(dest="config_command", required=True)
    show = csub.add_parser("show", help="print the effective config, secrets redacted")
    show.set_defaults(func=_show)
    check = csub.add_parser("check", help="validate the config and exit 0 if it loads")
    check.set_defaults(func=_check)


def _show(args: argparse.Namespace) -> int:
    print(json.dumps(load_settings(args.config).redacted(), indent=2, default=str))
    return 0


def _check(args: argparse.Namespace) -> int:
    load_settings(args.config)
    print("config ok")
    return 0
