"""The channel schemas of the OpenAPI document against the validators: every value the
patterns describe is one capmon takes, and the document's examples are accepted."""

from __future__ import annotations

import random
import re
from typing import Any

import phonenumbers
from aiohttp.test_utils import TestClient
from email_validator import validate_email

from monitor.api.channel_schema import AREA_CODES, EMAIL_PATTERN, PHONE_PATTERN
from tests.api.conftest import new_tenant


def test_every_number_of_the_pattern_is_valid() -> None:
    rng = random.Random(1)
    for area in AREA_CODES:
        for exchange in range(200, 1000):
            number = f"+1{area}{exchange}{rng.randrange(10_000):04d}"
            assert re.fullmatch(PHONE_PATTERN, number)
            assert phonenumbers.is_valid_number(phonenumbers.parse(number, None)), number


def test_addresses_of_the_pattern_are_valid() -> None:
    for address in ("a@b.io", "a.b+c@x-y.z.example.com", "0@0-0.0.us", "ops@cca.example.com"):
        assert re.fullmatch(EMAIL_PATTERN, address), address
        validate_email(address, check_deliverability=False)


async def test_document_examples_are_accepted(client: TestClient[Any, Any]) -> None:
    _, key = await new_tenant(client, "Examples CCA")
    doc = await (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    channel = schemas["SubscriptionSpec"]["properties"]["channel"]
    kinds = set()
    for ref in channel["discriminator"]["mapping"].values():
        schema = schemas[ref.rsplit("/", 1)[1]]
        kind = schema["properties"]["type"]["const"]
        kinds.add(kind)
        field = next(n for n in schema["required"] if n != "type")
        prop = schema["properties"][field]
        for example in prop["examples"]:
            assert re.fullmatch(prop["pattern"], example), (kind, example)
            body = {"name": f"example {kind}", "channel": {"type": kind, field: example}}
            resp = await client.post("/v1/subscriptions", json=body,
                                     headers={"Authorization": f"Bearer {key}"})
            assert resp.status == 201, (kind, await resp.text())
    assert kinds == {"webhook", "sms", "voice", "email"}


async def test_integral_float_is_an_integer_and_false_is_not_a_number(
        client: TestClient[Any, Any]) -> None:
    _, key = await new_tenant(client, "Strict CCA")
    auth = {"Authorization": f"Bearer {key}"}
    body = {"name": "t", "channel": {"type": "email", "address": "ops@cca.example.com"},
            "match": {"thresholds": [{"kind": "caiso.demand", "above": 40000.0}]}}
    assert (await client.post("/v1/subscriptions", json=body, headers=auth)).status == 201
    body["match"] = {"thresholds": [{"kind": "caiso.demand", "below": False}]}
    assert (await client.post("/v1/subscriptions", json=body, headers=auth)).status == 422
    body["match"] = {}
    body["channel"] = {"address": "ops@cca.example.com"}
    assert (await client.post("/v1/subscriptions", json=body, headers=auth)).status == 422
