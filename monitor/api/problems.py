"""RFC 9457 problem+json errors, and the middleware that turns every error into one."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from monitor.errors import StoreError

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=BaseModel)
PROBLEM_TYPE = "application/problem+json"


class Problem(web.HTTPException):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None,
                 errors: list[dict[str, Any]] | None = None, *,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status
        # Kept as well as serialized: the portal shows them beside its forms.
        self.title, self.detail, self.errors = title, detail, errors or []
        body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
        if detail:
            body["detail"] = detail
        if errors:
            body["errors"] = errors
        super().__init__(text=json.dumps(body), content_type=PROBLEM_TYPE, headers=headers)


def problem_response(status: int, title: str, detail: str | None = None,
                     errors: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_TYPE)


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if math.isfinite(value) and value.is_integer() else value


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not JSON")


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON body; size is already capped by client_max_size."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Problem(413, "Request body too large") from None
    text: str | bytes = raw
    # Strict: JSON's types as the schema states them (no `"5"` or `true` for a number), where
    # a number is an integer when its value is (`838.0`), as in JSON Schema. What is not JSON
    # (NaN and Infinity included) goes to pydantic as it came, to say why.
    with contextlib.suppress(ValueError, RecursionError):
        text = json.dumps(json.loads(raw, parse_float=_number, parse_constant=_no_constant))
    try:
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise invalid_body(exc) from None


def invalid_body(exc: ValidationError) -> Problem:
    """The 422 of a document that does not validate, one error per field."""
    errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    return Problem(422, "Invalid request body", "see errors", errors)


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem:
        raise
    except web.HTTPRequestEntityTooLarge:
        return problem_response(413, "Request body too large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        resp = problem_response(exc.status, exc.reason)
        if "Allow" in exc.headers:  # RFC 9110: a 405 names the methods that are allowed
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except StoreError as exc:
        if not exc.retriable:
            log.exception("api_unhandled_error", path=request.path, method=request.method)
            return problem_response(500, "Internal error")
        # The database is away (restarting, unreachable): the client may try again shortly.
        log.warning("api_store_unavailable", path=request.path, error=str(exc))
        resp = problem_response(503, "Service unavailable",
                                "capmon's store is unavailable; try again shortly")
        resp.headers["Retry-After"] = "5"
        return resp
    except ConnectionResetError:  # the client went away mid-request: nothing to answer
        log.info("api_client_disconnected", path=request.path, method=request.method)
        raise
    except Exception:
        log.exception("api_unhandled_error", path=request.path, method=request.method)
        return problem_response(500, "Internal error")
