"""`capmon subscriptions add | list | rm | import FILE`: the same schema as the API.

`import` reads YAML (one document: a list of subscriptions, or `{subscriptions: [...]}`),
validates every entry (and checks webhook URLs against SSRF) before writing any, and prints
each new id with its webhook secret, shown this once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from capmon.cli.roles import settings_from
from capmon.cli.tenants import with_store
from monitor.channels import unconfigured
from monitor.clock import SystemClock
from monitor.netguard import UnsafeUrlError, check_url
from monitor.store import Store
from monitor.store import endpoints as endpoint_store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.subscriptions import SubscriptionSpec, WebhookTarget, validation_problems


def register(sub: Any) -> None:
    p = sub.add_parser("subscriptions", help="manage a tenant's subscriptions")
    ssub = p.add_subparsers(dest="subscriptions_command", required=True)
    add = ssub.add_parser("add", help="add one subscription from flags")
    add.add_argument("--tenant", required=True, metavar="ID")
    add.add_argument("--name", required=True)
    add.add_argument("--kind", action="append", default=[], help="repeatable")
    add.add_argument("--min-severity", default="info")
    add.add_argument("--region", action="append", default=[], help="repeatable")
    add.add_argument("--program", action="append", default=[], help="repeatable")
    add.add_argument("--transition", action="append", default=[], help="repeatable")
    add.add_argument("--repeat-interval", metavar="ISO8601", help="e.g. PT4H")
    target = add.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook", metavar="URL")
    target.add_argument("--sms", metavar="E164")
    target.add_argument("--voice", metavar="E164",
                        help="a call that reads the alert (1 acknowledges, 9 stops calls)")
    target.add_argument("--email", metavar="ADDRESS")
    add.add_argument("--quiet-hours", metavar="HH:MM-HH:MM")
    add.add_argument("--heartbeat", metavar="HH:MM",
                     help='a daily "capmon is watching" at this local time')
    add.add_argument("--timezone", default="America/Los_Angeles",
                     help="of --quiet-hours and --heartbeat (default: %(default)s)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=_add)
    ls = ssub.add_parser("list", help="list subscriptions")
    ls.add_argument("--tenant", metavar="ID", help="only this tenant's")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    rm = ssub.add_parser("rm", help="delete a subscription")
    rm.add_argument("id")
    rm.add_argument("--tenant", metavar="ID")
    rm.set_defaults(func=_rm)
    imp = ssub.add_parser("import", help="add subscriptions from a YAML file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--tenant", required=True, metavar="ID")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=_import)


def _spec_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    channel: dict[str, Any]
    if args.webhook:
        channel = {"type": "webhook", "url": args.webhook}
    elif args.sms:
        channel = {"type": "sms", "phone": args.sms}
    elif args.voice:
        channel = {"type": "voice", "phone": args.voice}
    else:
        channel = {"type": "email", "address": args.email}
    spec: dict[str, Any] = {
        "name": args.name, "channel": channel,
        "match": {"kinds": args.kind, "min_severity": args.min_severity,
                  "regions": args.region, "programs": args.program},
    }
    if args.transition:
        spec["transitions"] = args.transition
    if args.repeat_interval:
        spec["repeat_interval"] = args.repeat_interval
    if args.quiet_hours:
        start, _, end = args.quiet_hours.partition("-")
        spec["quiet_hours"] = {"timezone": args.timezone, "start": start, "end": end}
    if args.heartbeat:
        spec["heartbeat"] = {"at": args.heartbeat, "timezone": args.timezone}
    return spec


def _validate(raw: list[Any]) -> tuple[list[SubscriptionSpec], list[str]]:
    specs, problems = [], []
    for i, entry in enumerate(raw):
        try:
            specs.append(SubscriptionSpec.model_validate(entry))
        except ValidationError as exc:
            problems += validation_problems(exc, f"#{i + 1} ")
    return specs, problems


def _create(args: argparse.Namespace, raw: list[Any]) -> int:
    specs, problems = _validate(raw)
    settings = settings_from(args)

    async def go(store: Store) -> list[dict[str, Any]]:
        for i, spec in enumerate(specs):
            if (why := unconfigured(settings, spec.channel.type)) is not None:
                problems.append(f"#{i + 1} channel: {why}")
            elif isinstance(spec.channel, WebhookTarget):
                try:
                    await check_url(spec.channel.url, settings.webhook)
                except UnsafeUrlError as exc:
                    problems.append(f"#{i + 1} channel.url: {exc}")
        if problems:
            return []
        out = []
        async with store.begin() as conn:
            if await tenant_store.get_tenant(conn, args.tenant) is None:
                problems.append(f"no tenant {args.tenant}")
                return []
            for i, spec in enumerate(specs):
                refusal = await endpoint_store.opt_out_refusal(conn, spec.channel.type,
                                                                spec.target())
                if refusal is not None:
                    problems.append(f"#{i + 1} channel: {refusal}")
            if problems:
                return []
            for spec in specs:
                sub, secret = await sub_store.create(conn, args.tenant, spec,
                                                     SystemClock().now())
                out.append({"id": sub.id, "name": spec.name, "secret": secret})
        return out

    created = with_store(args, go) if not problems else []
    if problems:
        for line in problems:
            print(f"capmon subscriptions: {line}", file=sys.stderr)
        print("capmon subscriptions: nothing was written", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(created))
    else:
        for c in created:
            secret = f"\tsecret {c['secret']} (shown once)" if c["secret"] else ""
            print(f"{c['id']}\t{c['name']}{secret}")
    return 0


def _add(args: argparse.Namespace) -> int:
    return _create(args, [_spec_from_flags(args)])


def _import(args: argparse.Namespace) -> int:
    try:
        doc = yaml.safe_load(args.file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        print(f"capmon subscriptions import: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    if isinstance(doc, dict) and isinstance(doc.get("subscriptions"), list):
        doc = doc["subscriptions"]
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not doc:
        print("capmon subscriptions import: expected a list of subscriptions",
              file=sys.stderr)
        return 1
    return _create(args, doc)


def _list(args: argparse.Namespace) -> int:
    async def go(store: Store) -> list[sub_store.StoredSubscription]:
        async with store.connect() as conn:
            return await sub_store.list_for(conn, args.tenant, limit=1_000_000)

    subs = with_store(args, go)
    if args.json:
        print(json.dumps([s.public().model_dump(mode="json", exclude={"secret"})
                          for s in subs]))
    else:
        for s in subs:
            print(f"{s.id}\t{s.tenant_id}\t{s.status}\t{s.spec.channel.type}\t{s.spec.name}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    async def go(store: Store) -> bool:
        async with store.begin() as conn:
            return await sub_store.delete(conn, args.id, args.tenant)

    if not with_store(args, go):
        print(f"capmon subscriptions rm: no subscription {args.id}", file=sys.stderr)
        return 1
    print(f"deleted {args.id}")
    return 0
