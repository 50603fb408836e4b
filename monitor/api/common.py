"""Helpers the v1 route modules share: query models, pagination, the clock and the lookup."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from monitor.api.keys import RUNTIME
from monitor.api.problems import Problem
from monitor.netguard import Lookup, system_lookup

Q = TypeVar("Q", bound=BaseModel)

# How webhook hosts are resolved when a subscription is written; tests inject their own so
# no test ever asks a real DNS server.
LOOKUP: web.AppKey[Lookup] = web.AppKey("webhook_lookup")


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


def parse_query(request: web.Request, model: type[Q]) -> Q:
    list_fields = {name for name, f in model.model_fields.items()
                   if str(f.annotation).startswith("list")}
    data: dict[str, Any] = {}
    for key in set(request.query):
        data[key] = request.query.getall(key) if key in list_fields else request.query[key]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": ["query", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
        raise Problem(422, "Invalid query parameters", "see errors", errors) from None


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI `parameters` for a query model (optional values described by their type)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(_inline(prop, defs))
        prop.pop("title", None)
        if "anyOf" in prop:
            branches = [b for b in prop.pop("anyOf") if b.get("type") != "null"]
            prop.pop("default", None)
            prop.update(branches[0] if len(branches) == 1 else {"anyOf": branches})
        param: dict[str, Any] = {"name": name, "in": "query", "required": False,
                                 "schema": prop}
        if prop.get("type") == "array":
            param.update(style="form", explode=True)
        out.append(param)
    return out


def _iso_datetime(value: Any) -> Any:
    # Only ISO 8601 text: pydantic's lax mode would read `0.5` as a Unix timestamp.
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time with a UTC offset") from None


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]


def path_id(request: web.Request, name: str = "id") -> str:
    """A path identifier; longer than any id capmon makes means it does not exist."""
    value = request.match_info[name]
    if not 1 <= len(value) <= MAX_ID:
        raise Problem(404, "Not found")
    return value


MAX_ID = 300


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID}}


def next_offset(q: PageQuery, count: int) -> int | None:
    return q.offset + q.limit if count == q.limit else None


def lookup_of(request: web.Request) -> Lookup:
    # From the main application, also for a request a sub-application (the portal) serves.
    fn: Lookup = request.config_dict.get(LOOKUP, system_lookup)
    return fn


def now_of(request: web.Request) -> Any:
    return request.app[RUNTIME].clock.now()
