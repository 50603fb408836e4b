"""`capmon tenants add | list | rotate-key | revoke`: the operator's side of /v1/tenants."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from capmon.cli.roles import settings_from
from monitor.admin_health import AdminHealth, subscribe_admin
from monitor.clock import SystemClock
from monitor.errors import ConfigError, StoreConflict
from monitor.store import Store
from monitor.store import tenants as tenant_store

T = TypeVar("T")


def register(sub: Any) -> None:
    p = sub.add_parser("tenants", help="manage tenants (CCAs) and their API keys")
    tsub = p.add_subparsers(dest="tenants_command", required=True)
    add = tsub.add_parser("add", help="create a tenant; prints its API key once")
    add.add_argument("name")
    add.add_argument("--admin-contact", metavar="EMAIL",
                     help="also subscribed by email to capmon's own health")
    add.add_argument("--no-health-alerts", action="store_true",
                     help="do not subscribe the admin contact to capmon's health")
    add.add_argument("--json", action="store_true",
                     help='print {"id", "api_key", "health_subscription"}')
    add.set_defaults(func=_add)
    ls = tsub.add_parser("list", help="list tenants")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    rot = tsub.add_parser("rotate-key", help="issue a new API key and revoke every other")
    rot.add_argument("id")
    rot.add_argument("--json", action="store_true")
    rot.set_defaults(func=_rotate)
    rev = tsub.add_parser("revoke", help="revoke every API key of a tenant")
    rev.add_argument("id")
    rev.set_defaults(func=_revoke)


def with_store(args: argparse.Namespace, fn: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        store = Store(settings_from(args).store.url)
        try:
            await store.upgrade()
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(go())


def _add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from monitor.api.tenants import TenantCreate

    try:
        body = TenantCreate(name=args.name, admin_contact=args.admin_contact)
    except ValidationError as exc:
        raise ConfigError("; ".join(e["msg"] for e in exc.errors())) from None

    settings = settings_from(args)

    async def go(store: Store) -> tuple[str, str, AdminHealth]:
        now = SystemClock().now()
        async with store.begin() as conn:
            tenant, key = await tenant_store.create_tenant(conn, body.name, body.admin_contact,
                                                           now)
            health = await subscribe_admin(conn, settings, tenant.id, body.admin_contact, now,
                                           wanted=not args.no_health_alerts)
        return tenant.id, key, health

    try:
        tenant_id, key, health = with_store(args, go)
    except StoreConflict:
        print(f"capmon tenants add: a tenant named {args.name!r} exists", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"id": tenant_id, "api_key": key, "health_subscription": {
            "id": health.subscription_id, "detail": health.detail}}))
    else:
        print(f"tenant {tenant_id}\napi key {key}\n(the key is shown once: store it now)\n"
              f"capmon health: {health.detail}")
    return 0


def _list(args: argparse.Namespace) -> int:
    async def go(store: Store) -> list[tenant_store.Tenant]:
        async with store.connect() as conn:
            return await tenant_store.list_tenants(conn)

    tenants = with_store(args, go)
    if args.json:
        print(json.dumps([{"id": t.id, "name": t.name, "admin_contact": t.admin_contact,
                           "status": t.status, "created_at": t.created_at.isoformat()}
                          for t in tenants]))
    else:
        for t in tenants:
            print(f"{t.id}\t{t.status}\t{t.name}\t{t.admin_contact or ''}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    async def go(store: Store) -> str | None:
        now = SystemClock().now()
        async with store.begin() as conn:
            if await tenant_store.get_tenant(conn, args.id) is None:
                return None
            key = await tenant_store.add_api_key(conn, args.id, now)
            await tenant_store.revoke_api_keys(conn, args.id, now,
                                               except_hash=tenant_store.hash_key(key))
        return key

    key = with_store(args, go)
    if key is None:
        print(f"capmon tenants rotate-key: no tenant {args.id}", file=sys.stderr)
        return 1
    print(json.dumps({"id": args.id, "api_key": key}) if args.json else f"api key {key}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    async def go(store: Store) -> int | None:
        async with store.begin() as conn:
            if await tenant_store.get_tenant(conn, args.id) is None:
                return None
            return await tenant_store.revoke_api_keys(conn, args.id, SystemClock().now())

    revoked = with_store(args, go)
    if revoked is None:
        # A typo must not look like a successful revocation.
        print(f"capmon tenants revoke: no tenant {args.id}", file=sys.stderr)
        return 1
    print(f"revoked {revoked} key(s)")
    return 0
