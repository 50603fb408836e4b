"""SSRF guard for webhook targets: checked at subscribe time and again at connect time.

A webhook URL is admitted when its scheme is https (http only with `webhook.allow_http`, or
for a host in `webhook.allow_hosts`), it carries no credentials, and every address its host
resolves to is globally routable: loopback, private (RFC 1918), link-local (and so the cloud
metadata address 169.254.169.254), unique-local, multicast, reserved and unspecified
addresses are refused. Hosts in `allow_hosts` skip the address check (local development).

At connect time the same rule holds through `GuardedResolver`, an aiohttp resolver that
refuses non-global addresses, so a DNS answer that changed since subscribe time (DNS
rebinding) cannot reach an internal service; `guarded_session` builds a client session with
it, and `request_no_redirect` refuses redirects rather than following them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from monitor.config import WebhookSettings
from monitor.errors import CapmonError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host -> addresses; injectable so tests can make a name resolve where they need it.
Lookup = Callable[[str], Awaitable[Sequence[str]]]

METADATA_ADDRESSES = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200"})


class UnsafeUrlError(CapmonError):
    """A webhook target capmon refuses to call; `reason` is a bounded label."""

    default_reason = "unsafe_url"


class ForbiddenAddress(OSError):
    """What `GuardedResolver` raises inside aiohttp, which expects resolvers to fail with
    OSError (it arrives wrapped in `aiohttp.ClientConnectorDNSError.os_error`)."""


# Carrier-grade NAT (RFC 6598): inside a provider's or a cloud's network, never the internet.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
# NAT64 (RFC 6052's well-known /96, RFC 8215's local-use /48): a gateway translates these to
# IPv4 inside whatever network it serves. Refused outright (as they always were, being
# reserved); 6to4 (2002::/16, RFC 3056) is judged by the IPv4 address it carries.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def address_problem(ip: IpAddress) -> str | None:
    """Why an address may not be called, or None when it is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _NAT64):
            return "a NAT64 address"
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            problem = address_problem(embedded)
            return None if problem is None else f"{problem} ({embedded}, embedded in IPv6)"
    if str(ip) in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"):
        return "a unique-local address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_private, "a private address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
    )
    for hit, what in checks:
        if hit:
            return what
    if not ip.is_global:
        return "a non-global address"
    return None


def _host_allowed(host: str, settings: WebhookSettings) -> bool:
    return host.lower().strip("[]") in {h.lower().strip("[]") for h in settings.allow_hosts}


def check_url_syntax(url: str, settings: WebhookSettings) -> tuple[str, str]:
    """Scheme, credentials and literal-IP checks; returns (scheme, host)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise UnsafeUrlError(f"malformed URL: {exc}", reason="malformed") from None
    if port == 0:
        raise UnsafeUrlError("malformed URL: port 0 is not a port", reason="malformed")
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeUrlError("webhook URL must be an absolute https:// URL", reason="scheme")
    _check_host_name(host)
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("webhook URL must not carry credentials", reason="credentials")
    allowed = _host_allowed(host, settings)
    if parts.scheme == "http" and not (settings.allow_http or allowed):
        raise UnsafeUrlError("webhook URL must use https (http is allowed only for hosts "
                             "listed in webhook.allow_hosts)", reason="scheme")
    if not allowed:
        try:
            literal: IpAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            problem = address_problem(literal)
            if problem:
                raise UnsafeUrlError(f"webhook host {host} is {problem}", reason="address")
    return parts.scheme, host


def _check_host_name(host: str) -> None:
    """A name DNS can carry: labels of 1 to 63 characters, 253 in all (one trailing dot is
    the root). Anything else makes the resolver's IDNA codec raise, not refuse."""
    if _is_ip(host):
        return
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        raise UnsafeUrlError(f"malformed URL: {host!r} is not a valid host name (empty or "
                             "over-long label)", reason="malformed")
    try:
        name.encode("idna")
    except UnicodeError:
        raise UnsafeUrlError(f"malformed URL: {host!r} is not a valid host name",
                             reason="malformed") from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def system_lookup(host: str) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_url(url: str, settings: WebhookSettings, lookup: Lookup = system_lookup) -> None:
    """Refuse a webhook URL that is not https or whose host resolves to a non-global address."""
    _, host = check_url_syntax(url, settings)
    if _host_allowed(host, settings):
        return
    try:
        addresses = await lookup(host)
    except (OSError, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UnsafeUrlError(f"webhook host {host} does not resolve ({why})",
                             reason="dns") from None
    if not addresses:
        raise UnsafeUrlError(f"webhook host {host} does not resolve", reason="dns")
    for raw in addresses:
        problem = address_problem(ipaddress.ip_address(raw.split("%", 1)[0]))
        if problem:
            raise UnsafeUrlError(f"webhook host {host} resolves to {raw}, {problem}",
                                 reason="address")


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses non-global addresses (except `allow_hosts`)."""

    def __init__(self, settings: WebhookSettings, inner: AbstractResolver | None = None) -> None:
        self._settings = settings
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if _host_allowed(host, self._settings):
            return results
        for r in results:
            # One bad address refuses the name: a client may pick any of them.
            problem = address_problem(ipaddress.ip_address(r["host"].split("%", 1)[0]))
            if problem:
                raise ForbiddenAddress(f"webhook host {host} resolves to {r['host']}, {problem}")
        return results

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(settings: WebhookSettings, **kwargs: Any) -> aiohttp.ClientSession:
    """A client session whose every connection goes through `GuardedResolver`.

    Literal-IP URLs skip resolvers in aiohttp, so callers still run `check_url_syntax` (as
    `request_no_redirect` does) before each request.
    """
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(settings))
    return aiohttp.ClientSession(connector=connector, **kwargs)


async def request_no_redirect(session: aiohttp.ClientSession, method: str, url: str,
                              settings: WebhookSettings, **kwargs: Any) -> aiohttp.ClientResponse:
    """One request that never follows a redirect: a 3xx answer raises UnsafeUrlError.

    The caller owns the returned response (use it as `async with`, or release it).
    """
    check_url_syntax(url, settings)
    try:
        resp = await session.request(method, url, allow_redirects=False, **kwargs)
    except aiohttp.ClientConnectorDNSError as exc:
        if isinstance(exc.os_error, ForbiddenAddress):
            raise UnsafeUrlError(str(exc.os_error), reason="address") from None
        raise
    if 300 <= resp.status < 400:
        location = resp.headers.get("Location", "")
        resp.release()
        raise UnsafeUrlError(f"webhook answered {resp.status} redirect to {location[:200]!r}; "
                             "redirects are not followed", reason="redirect")
    return resp
