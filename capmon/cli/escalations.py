"""`capmon escalation-policies create | list | show | delete` and `capmon escalations list`:
a tenant's escalation policies and their runs, against the store, with the API's checks
(monitor/escalation.py; decide.md, Escalation)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from capmon.cli.tenants import with_store
from monitor.clock import SystemClock
from monitor.errors import ConfigError
from monitor.escalation import Policy, PolicySpec, Run, RunState
from monitor.store import Store, escalations
from monitor.store import escalation_policies as policy_store
from monitor.store import tenants as tenant_store


def register(sub: Any) -> None:
    p = sub.add_parser("escalation-policies", help="manage a tenant's escalation policies")
    psub = p.add_subparsers(dest="policies_command", required=True)
    create = psub.add_parser("create", help="create a policy from a YAML or JSON file")
    create.add_argument("--tenant", required=True, metavar="ID")
    create.add_argument("--file", required=True, type=Path, metavar="FILE")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=_create)
    ls = psub.add_parser("list", help="the tenant's policies")
    ls.add_argument("--tenant", required=True, metavar="ID")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    for name, fn, what in (("show", _show_one, "one policy, as JSON"),
                           ("delete", _delete, "delete a policy (its runs are cancelled)")):
        c = psub.add_parser(name, help=what)
        c.add_argument("--tenant", required=True, metavar="ID")
        c.add_argument("id")
        c.set_defaults(func=fn)
    e = sub.add_parser("escalations", help="a tenant's escalation runs")
    esub = e.add_subparsers(dest="escalations_command", required=True)
    runs = esub.add_parser("list", help="runs, newest first, with the steps paged")
    runs.add_argument("--tenant", required=True, metavar="ID")
    runs.add_argument("--condition", metavar="ID", help="only this condition's")
    runs.add_argument("--state", choices=[s.value for s in RunState])
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(func=_runs)


def _line(p: Policy) -> str:
    ladder = " -> ".join(f"{s.after or 'at once'}: {len(s.subscriptions)}" for s in p.steps)
    return f"{p.id}\t{p.min_severity.value}\t{p.name}\t{ladder}"


def _read(path: Path) -> PolicySpec:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return PolicySpec.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError("; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())) from None


def _create(args: argparse.Namespace) -> int:
    spec = _read(args.file)
    now = SystemClock().now()

    async def go(store: Store) -> Policy | str:
        async with store.begin() as conn:
            if await tenant_store.get_tenant(conn, args.tenant) is None:
                return f"no tenant {args.tenant}"
            try:
                return await policy_store.create(conn, args.tenant, spec, now)
            except policy_store.PolicyRefused as exc:
                return exc.detail

    made = with_store(args, go)
    if isinstance(made, str):
        print(f"capmon escalation-policies create: {made}", file=sys.stderr)
        return 1
    print(json.dumps(made.model_dump(mode="json")) if args.json else _line(made))
    return 0


def _list(args: argparse.Namespace) -> int:
    async def go(store: Store) -> list[Policy]:
        async with store.connect() as conn:
            return await policy_store.list_policies(conn, args.tenant, limit=500)

    for p in with_store(args, go):
        print(json.dumps(p.model_dump(mode="json")) if args.json else _line(p))
    return 0


def _show_one(args: argparse.Namespace) -> int:
    async def go(store: Store) -> Policy | None:
        async with store.connect() as conn:
            return await policy_store.get(conn, args.id, args.tenant)

    found = with_store(args, go)
    if found is None:
        print(f"capmon escalation-policies show: no policy {args.id} of this tenant",
              file=sys.stderr)
        return 1
    print(json.dumps(found.model_dump(mode="json"), indent=2))
    return 0


def _delete(args: argparse.Namespace) -> int:
    now = SystemClock().now()

    async def go(store: Store) -> bool:
        async with store.begin() as conn:
            return await policy_store.delete(conn, args.id, args.tenant, now)

    if not with_store(args, go):
        print(f"capmon escalation-policies delete: no policy {args.id} of this tenant",
              file=sys.stderr)
        return 1
    print(f"deleted {args.id}")
    return 0


def _run_line(r: Run) -> str:
    paged = sum(1 for p in r.pages if p.key is not None and p.muted is None)
    return (f"{r.id}\t{r.state.value}\t{r.condition_id}\tstep {r.step}\t{paged} paged"
            f"\t{r.started_at.isoformat()}\t{r.acknowledged_key or '-'}")


def _runs(args: argparse.Namespace) -> int:
    state = None if args.state is None else RunState(args.state)

    async def go(store: Store) -> list[Run]:
        async with store.connect() as conn:
            return await escalations.list_runs(conn, args.tenant, condition_id=args.condition,
                                               state=state, limit=500)

    for r in with_store(args, go):
        print(json.dumps(r.model_dump(mode="json")) if args.json else _run_line(r))
    return 0
