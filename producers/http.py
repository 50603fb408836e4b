"""The engine's HTTP client: one aiohttp session, shared by every source.

It sends a descriptive User-Agent, bounds every request by a timeout and the response body by a
size cap (read in chunks, aborted as soon as the cap is passed), remembers ETag/Last-Modified per
URL for conditional requests, and appends CAISO's CDN cache-buster (`_=<unix seconds>`) where a
source asks for it. Every failure becomes a `FetchError` with a bounded `reason` and a message
in words a person acts on ("cannot resolve www.caiso.com", "www.sce.com refused the
connection"): that message is what the status page, `/readyz` and `source.health` show.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import aiohttp
from yarl import URL

from monitor.clock import Clock
from monitor.errors import FetchError
from monitor.retry_after import parse_retry_after
from producers.source import Response

_CHUNK = 64 * 1024
_ERROR_SNIPPET = 200


@dataclass(frozen=True)
class _Validators:
    etag: str | None
    last_modified: str | None


class HttpFetcher:
    """Implements `producers.source.Fetcher`. Use as an async context manager, or call close()."""

    def __init__(
        self,
        clock: Clock,
        *,
        user_agent: str,
        timeout_s: float,
        max_response_bytes: int,
    ) -> None:
        self._clock = clock
        self._user_agent = user_agent
        self._timeout_s = timeout_s
        self._max_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        self._validators: dict[str, _Validators] = {}

    async def __aenter__(self) -> HttpFetcher:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self._user_agent},
                # Each request gets its own timeout below; the session default is a backstop.
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        conditional: bool = False,
        cache_bust: bool = False,
        timeout_s: float | None = None,
    ) -> Response:
        target = URL(url)
        if params:
            target = target.update_query(dict(params))
        # Validators are kept per URL without the cache-buster, which changes every request.
        validator_key = str(target)
        if cache_bust:
            target = target.update_query({"_": str(int(self._clock.now().timestamp()))})
        request_headers: dict[str, str] = dict(headers or {})
        if conditional and (known := self._validators.get(validator_key)) is not None:
            if known.etag:
                request_headers["If-None-Match"] = known.etag
            if known.last_modified:
                request_headers["If-Modified-Since"] = known.last_modified
        timeout = aiohttp.ClientTimeout(total=timeout_s or self._timeout_s)
        try:
            async with self._client().get(target, headers=request_headers,
                                          timeout=timeout) as resp:
                if resp.status == 304:
                    return Response(url=str(target), status=304, body=b"",
                                    headers=_headers(resp), fetched_at=self._clock.now())
                if resp.status >= 400:
                    snippet = (await _read_capped(resp, 4096))[:_ERROR_SNIPPET]
                    raise _status_error(target, resp.status, resp.headers, snippet,
                                        self._clock.now())
                if resp.status >= 300:
                    raise FetchError(f"{target.host} answered HTTP {resp.status} (a redirect, "
                                     "which capmon does not follow)", reason="client",
                                     retriable=False)
                body = await _read_capped(resp, self._max_bytes)
                if len(body) > self._max_bytes:
                    raise FetchError(f"{target.host} sent more than {self._max_bytes} bytes",
                                     reason="too_large", retriable=True)
                if conditional:
                    self._validators[validator_key] = _Validators(
                        resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
                return Response(url=str(target), status=resp.status, body=body,
                                headers=_headers(resp), fetched_at=self._clock.now())
        except FetchError:
            raise
        except TimeoutError as exc:
            raise FetchError(f"{target.host} did not answer within {timeout.total:g} s",
                             reason="timeout") from exc
        except aiohttp.ClientError as exc:
            raise connection_error(target, exc) from exc


def connection_error(target: URL, exc: aiohttp.ClientError) -> FetchError:
    """A transport failure in words: which host, and what went wrong with it."""
    host = target.host or str(target)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return FetchError(f"cannot resolve {host}", reason="dns")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return FetchError(f"the TLS connection to {host} failed: {exc}", reason="tls")
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{host}:{exc.port}" if exc.port else host
        code = exc.os_error.errno
        if isinstance(exc.os_error, ConnectionRefusedError) or code == errno.ECONNREFUSED:
            return FetchError(f"{where} refused the connection", reason="connect")
        if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return FetchError(f"no route to {where}", reason="connect")
        why = exc.os_error.strerror or type(exc.os_error).__name__
        return FetchError(f"cannot connect to {where}: {why}", reason="connect")
    if isinstance(exc, aiohttp.ClientConnectionError):
        return FetchError(f"the connection to {host} broke: {type(exc).__name__}",
                          reason="connect")
    return FetchError(f"the answer from {host} was malformed: {type(exc).__name__}",
                      reason="transport")


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first `limit + 1` bytes: one byte over the cap is enough to reject it."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        return b"\0" * (limit + 1)
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(parts)


def _headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    return {k: v for k, v in resp.headers.items()}


def _status_error(target: URL, status: int, headers: Mapping[str, str], snippet: bytes,
                  now: datetime) -> FetchError:
    text = snippet.decode("utf-8", "replace").replace("\n", " ").strip()
    message = f"{target.host} answered HTTP {status}" + (f": {text}" if text else "")
    if status == 429:
        return FetchError(message, reason="rate_limited",
                          retry_after=parse_retry_after(headers.get("Retry-After"), now))
    if status == 503 and "Retry-After" in headers:
        return FetchError(message, reason="server",
                          retry_after=parse_retry_after(headers.get("Retry-After"), now))
    if status >= 500:
        return FetchError(message, reason="server")
    if status in (401, 403):
        return FetchError(message, reason="auth")
    if status == 404:
        # A moved URL (CAISO renamed /outlook/SP/ in 2024) is a health failure, never "no data".
        return FetchError(f"{target.host} has no {target.path} (HTTP 404): the URL may have "
                          "moved", reason="not_found")
    return FetchError(message, reason="client")


__all__ = ["HttpFetcher", "connection_error"]
