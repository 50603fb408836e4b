"""The demo's subscribers: a YAML file of tenants and their subscriptions, loaded into the store.

The file is the scenario's `subscriptions.yaml` shape:

    tenants:
      - name: Clean Power Alliance of Southern California
        slug: cpa
        subscriptions: [<subscription JSON, as docs/decide.md describes>, ...]
        silences: [<silence JSON, as POST /v1/silences takes>, ...]     # optional

A plain list of subscriptions (what `capmon subscriptions import` reads) is one tenant named
"Demo". Every webhook URL is replaced by the demo's local receiver, so nothing leaves the
machine; SMS and email targets are kept (the sinks accept any recipient).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.errors import ConfigError
from monitor.silences import SilenceSpec
from monitor.store import Store
from monitor.store import silences as silence_store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.subscriptions import SubscriptionSpec, WebhookTarget, validation_problems


@dataclass(frozen=True)
class DemoSubscription:
    id: str
    tenant_id: str
    tenant: str
    tenant_slug: str
    name: str
    channel: str
    target: str
    secret: str | None
    original_target: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class DemoTenant:
    name: str
    slug: str
    subscriptions: list[SubscriptionSpec]
    silences: list[SilenceSpec]


def read_file(path: Path) -> list[DemoTenant]:
    """The file's tenants, validated; a ConfigError names every problem."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read subscriptions file {path}: {exc}") from None
    if isinstance(doc, list):
        doc = {"tenants": [{"name": "Demo", "slug": "demo", "subscriptions": doc}]}
    if not isinstance(doc, dict) or not isinstance(doc.get("tenants"), list) or \
            not doc["tenants"]:
        raise ConfigError(f"{path}: expected `tenants:` with their `subscriptions:`")
    out, problems = [], []
    for t, tenant in enumerate(doc["tenants"]):
        if not isinstance(tenant, dict) or not tenant.get("name"):
            problems.append(f"tenants[{t}]: needs a name")
            continue
        specs = []
        for s, raw in enumerate(tenant.get("subscriptions") or []):
            try:
                specs.append(SubscriptionSpec.model_validate(raw))
            except ValidationError as exc:
                problems += validation_problems(exc, f"tenants[{t}].subscriptions[{s}].")
        silences = []
        for s, raw in enumerate(tenant.get("silences") or []):
            try:
                silences.append(SilenceSpec.model_validate(raw))
            except ValidationError as exc:
                problems += validation_problems(exc, f"tenants[{t}].silences[{s}].")
        slug = str(tenant.get("slug") or tenant["name"]).lower().replace(" ", "-")
        out.append(DemoTenant(str(tenant["name"]), slug, specs, silences))
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return out


async def load(store: Store, path: Path, webhook_url: Any, now: datetime
               ) -> list[DemoSubscription]:
    """Create the file's tenants, subscriptions and silences; `webhook_url(sub_id)` is where
    each webhook subscription delivers."""
    created: list[DemoSubscription] = []
    async with store.begin() as conn:
        for t in read_file(path):
            name, slug = t.name, t.slug
            tenant, _key = await tenant_store.create_tenant(
                conn, name, f"ops@{slug}.example", now)
            for silence in t.silences:
                await silence_store.create(conn, tenant.id, silence, now)
            for spec in t.subscriptions:
                sub_id = str(uuid.uuid4())
                original = spec.target()
                if isinstance(spec.channel, WebhookTarget):
                    spec = spec.model_copy(update={
                        "channel": WebhookTarget(type="webhook", url=webhook_url(sub_id))})
                stored, secret = await sub_store.create(conn, tenant.id, spec, now,
                                                        sub_id=sub_id)
                created.append(DemoSubscription(
                    id=stored.id, tenant_id=tenant.id, tenant=name, tenant_slug=slug,
                    name=spec.name, channel=spec.channel.type, target=spec.target(),
                    secret=secret, original_target=original,
                    spec=spec.model_dump(mode="json")))
    return created
