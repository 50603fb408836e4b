"""The API's HTTP server: how long a client may take, and aiohttp's own errors as problems.

aiohttp answers what it cannot parse (a malformed request line, header or Content-Length)
before any middleware runs, in plain text, and logs each with a traceback; `api_runner`
serves those as problem+json too and logs them as the client's fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web

from monitor.api.keys import RUNTIME
from monitor.api.problems import Problem, problem_response
from monitor.config import ApiSettings

log = structlog.get_logger(__name__)


@web.middleware
async def body_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Reads the whole body, within `api.body_timeout_s`, before any handler sees it."""
    if request.body_exists:
        api = request.app[RUNTIME].settings.api
        if (request.content_length or 0) > api.max_body_bytes:
            # Refused on its header: waiting for a body of that size would be the attack.
            raise _closing(Problem(413, "Request body too large",
                                   f"at most {api.max_body_bytes} bytes"))
        try:
            async with asyncio.timeout(api.body_timeout_s):
                await request.read()  # kept by the request: handlers read it again for free
        except TimeoutError:
            raise _closing(Problem(408, "Request timeout",
                                   f"the body did not arrive within {api.body_timeout_s:g} s")
                           ) from None
    return await handler(request)


def _closing(problem: Problem) -> Problem:
    problem.force_close()  # the rest of the body, if it ever comes, is not a next request
    return problem


class _ProblemHandler(web.RequestHandler):
    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):
            # The client went away (already logged by the problem middleware): nobody to tell.
            log.debug("api_connection_lost", remote=request.remote)
        elif status < 500:
            log.info("api_bad_request", status=status, remote=request.remote,
                     error=_first_line(message))
        else:
            log.error("api_protocol_error", status=status, remote=request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the response had begun: no problem can follow it")
        detail = _first_line(message) if status < 500 else None
        resp = problem_response(status, HTTPStatus(status).phrase, detail or None)
        resp.force_close()
        return resp


class _ProblemServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _ProblemHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _ProblemServer(made.request_handler, request_factory=made.request_factory,
                              handler_cancellation=made.handler_cancellation,
                              loop=made._loop, **made._kwargs)


def api_runner(app: web.Application, api: ApiSettings, **kwargs: Any) -> ApiRunner:
    """The runner of the API app, with `api.*`'s timeouts."""
    return ApiRunner(
        app, access_log=None,
        # aiohttp's keep-alive timer also runs from the moment a connection opens until a
        # request head is complete: one bound on idle connections and on slow headers.
        keepalive_timeout=api.idle_timeout_s,
        # A body that is refused unread is drained for at most this long before closing.
        lingering_time=api.body_timeout_s, **kwargs)


def _first_line(message: str | None) -> str:
    # aiohttp's parser messages go on to quote the offending bytes, with a caret under them.
    return (message or "").strip().split("\n")[0].rstrip(": ")
