"""`capmon silences add | list | expire | rm`: a tenant's silences, against the store, with
the API's checks (monitor/silences.py; decide.md, Silences)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from capmon.cli.tenants import with_store
from monitor.clock import SystemClock
from monitor.errors import ConfigError
from monitor.silences import Silence, SilenceSpec, SilenceState, SilenceView
from monitor.store import Store
from monitor.store import silences as silence_store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store


def register(sub: Any) -> None:
    p = sub.add_parser("silences", help="manage a tenant's silences")
    ssub = p.add_subparsers(dest="silences_command", required=True)
    add = ssub.add_parser("add", help="silence what the matchers say, from START to END")
    add.add_argument("--tenant", required=True, metavar="ID")
    add.add_argument("--kind", action="append", default=[], help="repeatable")
    add.add_argument("--condition", action="append", default=[], metavar="ID",
                     help="a condition id (repeatable)")
    add.add_argument("--region", action="append", default=[], help="repeatable")
    add.add_argument("--program", action="append", default=[], help="repeatable")
    add.add_argument("--subscription", action="append", default=[], metavar="ID",
                     help="only this subscription (repeatable; default: all the tenant's)")
    add.add_argument("--min-severity", default="info")
    add.add_argument("--max-severity", default="critical")
    add.add_argument("--start", metavar="ISO8601", help="with its offset; default: now")
    add.add_argument("--end", required=True, metavar="ISO8601", help="with its offset")
    add.add_argument("--by", required=True, help="who makes it")
    add.add_argument("--comment", required=True, help="why")
    add.add_argument("--include-all-clear", action="store_true",
                     help="also hold back all-clears of what was already sent")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=_add)
    ls = ssub.add_parser("list", help="the tenant's silences")
    ls.add_argument("--tenant", required=True, metavar="ID")
    ls.add_argument("--state", choices=[s.value for s in SilenceState])
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    for name, fn, what in (("expire", _expire, "end a silence now"),
                           ("rm", _rm, "delete a silence")):
        c = ssub.add_parser(name, help=what)
        c.add_argument("--tenant", required=True, metavar="ID")
        c.add_argument("id")
        c.set_defaults(func=fn)


def _show(s: Silence, now: datetime, as_json: bool) -> str:
    view = SilenceView.of(s, now)
    if as_json:
        return json.dumps(view.model_dump(mode="json"))
    return (f"{s.id}\t{view.status.value}\t{s.starts_at.isoformat()}\t{s.ends_at.isoformat()}"
            f"\t{s.created_by}\t{s.comment}")


def _add(args: argparse.Namespace) -> int:
    try:
        spec = SilenceSpec.model_validate({
            "match": {"kinds": args.kind, "condition_ids": args.condition,
                      "regions": args.region, "programs": args.program,
                      "subscription_ids": args.subscription,
                      "min_severity": args.min_severity, "max_severity": args.max_severity},
            "starts_at": args.start, "ends_at": args.end, "created_by": args.by,
            "comment": args.comment, "include_all_clear": args.include_all_clear})
    except ValidationError as exc:
        raise ConfigError("; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    now = SystemClock().now()
    if spec.ends_at <= now:
        raise ConfigError("--end is in the past")

    async def go(store: Store) -> Silence | str:
        async with store.begin() as conn:
            if await tenant_store.get_tenant(conn, args.tenant) is None:
                return f"no tenant {args.tenant}"
            missing = await sub_store.not_owned(conn, args.tenant, spec.match.subscription_ids)
            if missing:
                return f"no subscription {missing[0]} of this tenant"
            return await silence_store.create(conn, args.tenant, spec, now)

    made = with_store(args, go)
    if isinstance(made, str):
        print(f"capmon silences add: {made}", file=sys.stderr)
        return 1
    print(_show(made, now, args.json))
    return 0


def _list(args: argparse.Namespace) -> int:
    now = SystemClock().now()
    state = None if args.state is None else SilenceState(args.state)

    async def go(store: Store) -> list[Silence]:
        async with store.connect() as conn:
            return await silence_store.list_silences(conn, args.tenant, now, state=state,
                                                     limit=500)

    for s in with_store(args, go):
        print(_show(s, now, args.json))
    return 0


def _expire(args: argparse.Namespace) -> int:
    now = SystemClock().now()

    async def go(store: Store) -> Silence | None:
        async with store.begin() as conn:
            return await silence_store.expire(conn, args.id, args.tenant, now)

    found = with_store(args, go)
    if found is None:
        print(f"capmon silences expire: no silence {args.id} of this tenant", file=sys.stderr)
        return 1
    print(_show(found, now, False))
    return 0


def _rm(args: argparse.Namespace) -> int:
    async def go(store: Store) -> bool:
        async with store.begin() as conn:
            return await silence_store.delete(conn, args.id, args.tenant)

    if not with_store(args, go):
        print(f"capmon silences rm: no silence {args.id} of this tenant", file=sys.stderr)
        return 1
    print(f"deleted {args.id}")
    return 0
