"""`capmon run | produce | decide | deliver | api`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from capmon.roles import ROLES, SERVING_ROLES
from monitor.config import Settings, load_settings
from monitor.logging import configure_logging
from monitor.runtime import run_roles


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    settings = load_settings(args.config, **overrides)
    configure_logging(settings.log.level, settings.log.format)
    return settings


def _listen_flags(p: Any) -> None:
    p.add_argument("--host", help="address the API listens on (default api.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port of the API (default api.port, 8080); the "
                                            "links in SMS and email follow it unless "
                                            "api.public_url is set")


def _listen(args: argparse.Namespace) -> dict[str, Any]:
    """--host/--port as settings overrides, under the environment's other api settings."""
    api = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return {"api": api} if api else {}


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run every role in one process (embedded bus by default)")
    _listen_flags(p)
    p.set_defaults(func=_run_all)
    for name, helptext in (
        ("produce", "poll the sources and publish conditions"),
        ("decide", "turn condition revisions into notifications"),
        ("deliver", "send notifications by webhook, SMS and email"),
        ("api", "serve the HTTP API, status page and /metrics"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "api":
            _listen_flags(p)
        else:
            p.add_argument("--ops-port", type=int, metavar="PORT",
                           help="port of /healthz, /readyz and /metrics (default api.ops_port)")
        p.set_defaults(func=_run_one, role=name)


def _run_all(args: argparse.Namespace) -> int:
    settings = settings_from(args, **_listen(args))
    return asyncio.run(run_roles(settings, {name: ROLES[name] for name in SERVING_ROLES}))


def _run_one(args: argparse.Namespace) -> int:
    if args.role == "api":
        settings = settings_from(args, **_listen(args))
    else:
        ops = {} if args.ops_port is None else {"api": {"ops_port": args.ops_port}}
        settings = settings_from(args, **ops)
    return asyncio.run(run_roles(settings, {name: ROLES[name]
                                             for name in role_names(args.role, settings)}))


def role_names(role: str, settings: Settings) -> list[str]:
    """The role, plus the ops server for roles that do not serve the API themselves."""
    if role == "api" or not settings.api.ops_enabled:
        return [role]
    return [role, "ops"]
