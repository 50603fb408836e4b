"""`capmon run | produce | decide | deliver | api`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from monitor.config import Settings, load_settings
from monitor.logging import configure_logging
from monitor.runtime import SERVING_ROLES, run_roles


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
        else:
            p.add_argument("--ops-port", type=int, metavar="PORT",
                           help="port of /healthz, /readyz and /metrics (default api.ops_port)")
        p.set_defaults(func=_run_one, role=name)


def _run_all(args: argparse.Namespace) -> int:
    return asyncio.run(run_roles(settings_from(args), list(SERVING_ROLES), required=False))


def _run_one(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    settings = settings_from(args)
    if args.role == "api" and (args.host or args.port is not None):
        api = settings.api.model_copy(update={
            k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None})
        overrides["api"] = api
        settings = settings.model_copy(update=overrides)
    if args.role != "api" and args.ops_port is not None:
        settings = settings.model_copy(update={
            "api": settings.api.model_copy(update={"ops_port": args.ops_port})})
    return asyncio.run(run_roles(settings, role_names(args.role, settings), required=True))


def role_names(role: str, settings: Settings) -> list[str]:
    """The role, plus the ops server for roles that do not serve the API themselves."""
    if role == "api" or not settings.api.ops_enabled:
        return [role]
    return [role, "ops"]
