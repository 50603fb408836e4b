"""The SSRF check at connect time: a resolver that refuses non-global addresses.

Subscribe time checks a webhook URL once; DNS can change afterwards (rebinding), so the check
is repeated on the addresses the connection will actually use. aiohttp skips the resolver for
IP-literal hosts, so `check_url` covers those before a request is made. Hosts listed in
`webhook.allow_hosts` (local development, tests) are exempt.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class ForbiddenAddress(OSError):
    """The target resolves to a private, loopback, link-local or otherwise non-global address."""


def _is_global(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _norm(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


class GuardedResolver(AbstractResolver):
    """Wraps a resolver; refuses names whose addresses are not all global."""

    def __init__(self, allow_hosts: Iterable[str] = (),
                 inner: AbstractResolver | None = None) -> None:
        self._allow = frozenset(_norm(h) for h in allow_hosts)
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if _norm(host) in self._allow:
            return results
        refused = sorted({r["host"] for r in results if not _is_global(r["host"])})
        if refused:
            # One bad address refuses the name: a client may pick any of them.
            raise ForbiddenAddress(f"{host} resolves to a non-public address ({refused[0]})")
        return results

    async def close(self) -> None:
        await self._inner.close()


def check_url(url: str, *, allow_hosts: Iterable[str] = (), allow_http: bool = False) -> None:
    """Refuse a URL before connecting: scheme, and IP-literal hosts the resolver never sees."""
    parts = urlsplit(url)
    host = _norm(parts.hostname or "")
    allowed = host in {_norm(h) for h in allow_hosts}
    if parts.scheme not in ("https", "http") or not host:
        raise ForbiddenAddress(f"not an http(s) URL: scheme {parts.scheme!r}")
    if parts.scheme == "http" and not (allow_http or allowed):
        raise ForbiddenAddress("plain http is not allowed for webhooks")
    if allowed:
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if not _is_global(host):
        raise ForbiddenAddress(f"{host} is not a public address")
