"""The demo's subscribers: a YAML file of tenants and their subscriptions, loaded into the store.

The file is the scenario's `subscriptions.yaml` shape:

    tenants:
      - name: Clean Power Alliance of Southern California
        slug: cpa
        subscriptions: [<subscription JSON, as docs/decide.md describes>, ...]
        silences: [<silence JSON, as POST /v1/silences takes>, ...]     # optional
        escalation_policies: [<policy JSON, as POST /v1/escalation-policies takes>, ...]
    phones:                                                              # optional
      "+17605550187": {answer: no-answer}
      "+17605550163": {answer: human, digits: ["1"]}

A policy's steps name the tenant's subscriptions by their `name` (the file has no ids); the
loader resolves them, and an unknown name is an error. `phones` is how each number answers
the Twilio stand-in's calls (a person who presses keys, a machine, busy, no-answer, failed);
a number not listed is a person who presses nothing.

A plain list of subscriptions (what `capmon subscriptions import` reads) is one tenant named
"Demo". Every webhook URL is replaced by the demo's local receiver, so nothing leaves the
machine; SMS, voice and email targets are kept (the sinks accept any recipient).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from capmon.demo.twilio_calls import CallBehaviour
from monitor.errors import ConfigError
from monitor.escalation import PolicySpec
from monitor.silences import SilenceSpec
from monitor.store import Store
from monitor.store import escalation_policies as policy_store
from monitor.store import silences as silence_store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.subscriptions import SubscriptionSpec, WebhookTarget, e164, validation_problems


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
    # Each policy's steps name subscriptions by their index in `subscriptions` ("0", "1"...),
    # validated as the API would; `load` puts the stored ids in their place.
    policies: list[PolicySpec] = field(default_factory=list)


class Phone(BaseModel):
    """How one number answers a call in the story."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: Literal["human", "machine", "busy", "no-answer", "failed"] = "human"
    digits: list[Annotated[str, Field(pattern=r"^[0-9*#]$")]] = Field(
        default_factory=list, max_length=5)

    def behaviour(self) -> CallBehaviour:
        return CallBehaviour(answer=self.answer, digits=tuple(self.digits))


@dataclass(frozen=True)
class DemoFile:
    tenants: list[DemoTenant]
    phones: dict[str, Phone]


def _policies(raws: Any, specs: list[SubscriptionSpec], where: str
              ) -> tuple[list[PolicySpec], list[str]]:
    """The tenant's policies with subscription names turned into indexes, and the problems."""
    index: dict[str, str] = {}
    for n, spec in enumerate(specs):
        index.setdefault(spec.name, str(n))
    out, problems = [], []
    for p, raw in enumerate(raws or []):
        at = f"{where}escalation_policies[{p}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
            problems.append(f"{at}: expected a policy with `steps:`")
            continue
        steps, before = [], len(problems)
        for n, step in enumerate(raw["steps"]):
            names = step.get("subscriptions") if isinstance(step, dict) else None
            if not isinstance(names, list):
                problems.append(f"{at}.steps[{n}]: expected `subscriptions:` (their names)")
                continue
            for k, name in enumerate(names):
                if name not in index:
                    problems.append(f"{at}.steps[{n}].subscriptions[{k}]: no subscription "
                                    f"named {name!r} in this tenant")
            steps.append({**step, "subscriptions": [index.get(str(x), "?") for x in names]})
        if len(problems) > before:
            continue
        try:
            out.append(PolicySpec.model_validate({**raw, "steps": steps}))
        except ValidationError as exc:
            problems += validation_problems(exc, f"{at}.")
    return out, problems


def _phones(raw: Any, problems: list[str]) -> dict[str, Phone]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("phones: expected a mapping of phone number to how it answers")
        return {}
    out = {}
    for number, how in raw.items():
        try:
            # As a subscription's phone is checked and written: the keys match its targets.
            phone = e164(str(number))
        except ValueError:
            problems.append(f"phones[{number!r}]: not an E.164 phone number")
            continue
        try:
            out[phone] = Phone.model_validate(how or {})
        except ValidationError as exc:
            problems += validation_problems(exc, f"phones[{number!r}].")
    return out


def read_file(path: Path) -> DemoFile:
    """The file's tenants and phones, validated; a ConfigError names every problem."""
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
        policies, wrong = _policies(tenant.get("escalation_policies"), specs,
                                    f"tenants[{t}].")
        problems += wrong
        slug = str(tenant.get("slug") or tenant["name"]).lower().replace(" ", "-")
        out.append(DemoTenant(str(tenant["name"]), slug, specs, silences, policies))
    phones = _phones(doc.get("phones"), problems)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return DemoFile(out, phones)


async def load(store: Store, file: DemoFile, webhook_url: Any, now: datetime
               ) -> list[DemoSubscription]:
    """Create the file's tenants, subscriptions, silences and escalation policies;
    `webhook_url(sub_id)` is where each webhook subscription delivers."""
    created: list[DemoSubscription] = []
    async with store.begin() as conn:
        for t in file.tenants:
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
            ids = [s.id for s in created[-len(t.subscriptions):]] if t.subscriptions else []
            for policy in t.policies:
                await _create_policy(conn, tenant.id, policy, ids, now)
    return created


async def _create_policy(conn: AsyncConnection, tenant_id: str, policy: PolicySpec,
                         ids: list[str], now: datetime) -> None:
    steps = [step.model_copy(update={"subscriptions": [ids[int(i)] for i in step.subscriptions]})
             for step in policy.steps]
    try:
        await policy_store.create(conn, tenant_id, policy.model_copy(update={"steps": steps}),
                                  now)
    except policy_store.PolicyRefused as exc:
        raise ConfigError(f"escalation policy {policy.name!r}: {exc.detail}") from None
