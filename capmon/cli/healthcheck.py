"""`capmon healthcheck`: exit 0 if this host's capmon process answers /healthz (or /readyz).

The container HEALTHCHECK and ad-hoc checks use it; it tries the API port and then the ops
port, so one command fits every role. Only 127.0.0.1 (or --host) is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp

from monitor.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser("healthcheck", help="exit 0 if a local capmon process is healthy")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, action="append", dest="ports",
                   help="port to try (repeatable; default: api.port, then api.ops_port)")
    p.add_argument("--ready", action="store_true", help="check /readyz instead of /healthz")
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=run)


async def _check(host: str, ports: list[int], path: str, timeout: float) -> tuple[bool, str]:
    last = "no port answered"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for port in ports:
            url = f"http://{host}:{port}{path}"
            try:
                async with session.get(url, allow_redirects=False) as resp:
                    body = await resp.text()
                    if resp.status == 200:
                        return True, f"{url}: ok"
                    last = f"{url}: HTTP {resp.status} {body[:500]}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{url}: {type(exc).__name__}"
    return False, last


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ports = args.ports or [settings.api.port, settings.api.ops_port]
    ok, detail = asyncio.run(_check(args.host, ports, "/readyz" if args.ready else "/healthz",
                                    args.timeout))
    print(detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
