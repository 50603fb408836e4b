"""`/v1/silences` over a live API: create, list by state, expire, delete; validation; another
tenant's silences and subscriptions are out of reach."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from monitor.clock import ManualClock
from tests.api.conftest import bearer, new_tenant

SMS = {"type": "sms", "phone": "+14155550100"}


def spec(clock: ManualClock, **extra: Any) -> dict[str, Any]:
    return {"match": {"kinds": ["caiso.flex_alert"]},
            "ends_at": (clock.now() + timedelta(hours=24)).isoformat(),
            "created_by": "Dana (CPA power ops)", "comment": "Flex Alerts handled by phone",
            **extra}


async def test_lifecycle(client: TestClient[Any, Any], clock: ManualClock) -> None:
    _tenant, key = await new_tenant(client, "Clean Power Alliance")
    h = bearer(key)
    later = (clock.now() + timedelta(hours=2)).isoformat()
    resp = await client.post("/v1/silences", json=spec(clock), headers=h)
    assert resp.status == 201, await resp.text()
    now_one = await resp.json()
    assert now_one["status"] == "active" and now_one["created_by"] == "Dana (CPA power ops)"
    assert datetime.fromisoformat(now_one["starts_at"]) == clock.now()  # default: now
    pending = await (await client.post("/v1/silences", json=spec(clock, starts_at=later),
                                       headers=h)).json()
    assert pending["status"] == "pending"

    async def listed(state: str) -> list[str]:
        r = await client.get(f"/v1/silences?state={state}", headers=h)
        assert r.status == 200
        return [s["id"] for s in (await r.json())["items"]]

    assert await listed("active") == [now_one["id"]]
    assert await listed("pending") == [pending["id"]]
    expired = await client.post(f"/v1/silences/{now_one['id']}/expire", headers=h)
    assert expired.status == 200 and (await expired.json())["status"] == "expired"
    assert await listed("expired") == [now_one["id"]]
    # Expiring a pending silence means it never starts.
    await client.post(f"/v1/silences/{pending['id']}/expire", headers=h)
    assert await listed("pending") == [] and await listed("active") == []
    clock.advance(3 * 3600)
    assert await listed("active") == []
    assert (await client.delete(f"/v1/silences/{now_one['id']}", headers=h)).status == 204
    assert (await client.get(f"/v1/silences/{now_one['id']}", headers=h)).status == 404
    assert (await client.get(f"/v1/silences/{pending['id']}", headers=h)).status == 200


async def test_invalid_silences_are_problems(client: TestClient[Any, Any],
                                             clock: ManualClock) -> None:
    _tenant, key = await new_tenant(client, "Desert Community Energy")
    h = bearer(key)
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    cases = [
        spec(clock, match={}),  # a silence of everything
        spec(clock, match={"min_severity": "critical", "max_severity": "watch"}),
        spec(clock, ends_at=past),
        spec(clock, starts_at=(clock.now() + timedelta(days=2)).isoformat()),  # ends first
        spec(clock, created_by=""),
        spec(clock, comment=""),
        spec(clock, match={"kinds": ["caiso.nope"]}),
        spec(clock, match={"subscription_ids": ["0b7e1c3e-0000-4000-8000-000000000000"]}),
    ]
    for body in cases:
        resp = await client.post("/v1/silences", json=body, headers=h)
        assert resp.status == 422, body
        assert resp.content_type == "application/problem+json"
    assert (await client.get("/v1/silences?state=dormant", headers=h)).status == 422


async def test_tenants_are_kept_apart(client: TestClient[Any, Any], clock: ManualClock) -> None:
    _a, key_a = await new_tenant(client, "Clean Power Alliance")
    _b, key_b = await new_tenant(client, "Desert Community Energy")
    sub = await client.post("/v1/subscriptions", json={"name": "ops", "channel": SMS},
                            headers=bearer(key_a))
    sub_id = (await sub.json())["id"]
    mine = await client.post("/v1/silences", headers=bearer(key_a),
                             json=spec(clock, match={"subscription_ids": [sub_id]}))
    assert mine.status == 201
    silence_id = (await mine.json())["id"]
    # B cannot silence A's subscription, nor see, expire or delete A's silence.
    theirs = await client.post("/v1/silences", headers=bearer(key_b),
                               json=spec(clock, match={"subscription_ids": [sub_id]}))
    assert theirs.status == 422
    for method, path in (("GET", f"/v1/silences/{silence_id}"),
                         ("POST", f"/v1/silences/{silence_id}/expire"),
                         ("DELETE", f"/v1/silences/{silence_id}")):
        assert (await client.request(method, path, headers=bearer(key_b))).status == 404
    listed = await (await client.get("/v1/silences", headers=bearer(key_b))).json()
    assert listed["items"] == []
    assert (await client.get("/v1/silences")).status == 401
