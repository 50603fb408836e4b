"""`capmon run | produce | decide | deliver | api`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from monitor.config import Settings, load_settings
from monitor.logging import configure_logging
from monitor.runtime import ROLES, run_roles


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    settings = load_settings(args.config, **overrides)
    configure_logging(settings.log.level, settings.log.format)
    return settings


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run every role in one process (embedded bus by default)")
    p.set_defaults(func=_run_all)
    for name, helptext in (
        ("produce", "poll the sources and publish conditions"),
        ("decide", "turn condition revisions into notifications"),
        ("deliver", "send notifications by webhook, SMS and email"),
        ("api", "serve the HTTP API, status page and /metrics"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "api":
            p.add_argument("--host")
            p.add_argument("--port", type=int)
        p.set_defaults(func=_run_one, role=name)


def _run_all(args: argparse.Namespace) -> int:
    return asyncio.run(run_roles(settings_from(args), list(ROLES), required=False))


def _run_one(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    settings = settings_from(args)
    if args.role == "api" and (args.host or args.port is not None):
        api = settings.api.model_copy(update={
            k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None})
        overrides["api"] = api
        settings = settings.model_copy(update=overrides)
    return asyncio.run(run_roles(settings, [args.role], required=True))
