"""`/v1/escalation-policies` and `/v1/escalations` over a live API: a policy's lifecycle and
its rules as problems; another tenant's policies and subscriptions out of reach; a run decided
by the real decide, shown with its pages and, once someone took it, its acknowledgement."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from consumers.decide.decider import Decider
from monitor.attributes import NoticeAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.store import Store
from tests.api.conftest import bearer, new_tenant


async def subscribe(client: TestClient[Any, Any], key: str, *names: str) -> list[str]:
    out = []
    for n, name in enumerate(names):
        resp = await client.post("/v1/subscriptions", headers=bearer(key), json={
            "name": name, "channel": {"type": "sms", "phone": f"+1415555{100 + n:04d}"}})
        assert resp.status == 201, await resp.text()
        out.append((await resp.json())["id"])
    return out


def policy(first: list[str], *later: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": "EEA on-call", "min_severity": "emergency", **extra,
            "steps": [{"subscriptions": first},
                      *({"after": "PT10M", "subscriptions": s} for s in later)]}


async def test_lifecycle(client: TestClient[Any, Any]) -> None:
    _t, key = await new_tenant(client, "Clean Power Alliance")
    h = bearer(key)
    oncall, backup, director = await subscribe(client, key, "on-call", "backup", "director")
    resp = await client.post("/v1/escalation-policies", headers=h,
                             json=policy([oncall], [backup], [director]))
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert [s["subscriptions"] for s in made["steps"]] == [[oncall], [backup], [director]]
    assert made["steps"][0]["after"] is None and made["steps"][1]["after"] == "PT10M"
    listed = await (await client.get("/v1/escalation-policies", headers=h)).json()
    assert [p["id"] for p in listed["items"]] == [made["id"]]
    path = f"/v1/escalation-policies/{made['id']}"
    assert (await (await client.get(path, headers=h)).json())["name"] == "EEA on-call"
    put = await client.put(path, headers=h, json=policy([oncall], [backup, director],
                                                        name="EEA 3 on-call"))
    assert put.status == 200, await put.text()
    shown = await (await client.get(path, headers=h)).json()
    assert shown["name"] == "EEA 3 on-call" and len(shown["steps"]) == 2
    assert shown["created_at"] == made["created_at"]
    assert (await client.delete(path, headers=h)).status == 204
    assert (await client.get(path, headers=h)).status == 404
    assert (await client.delete(path, headers=h)).status == 404


async def test_a_policys_rules_are_problems(client: TestClient[Any, Any]) -> None:
    _t, key = await new_tenant(client, "Desert Community Energy")
    h = bearer(key)
    a, b = await subscribe(client, key, "on-call", "backup")
    unknown = "0b7e1c3e-0000-4000-8000-000000000000"
    cases = [
        {"name": "x", "steps": []},
        {"name": "x", "steps": [{"after": "PT5M", "subscriptions": [a]}]},
        {"name": "x", "steps": [{"subscriptions": [a]}, {"subscriptions": [b]}]},
        {"name": "x", "steps": [{"subscriptions": [a]},
                                {"after": "PT59S", "subscriptions": [b]}]},
        {"name": "x", "steps": [{"subscriptions": [a]},
                                {"after": "ten minutes", "subscriptions": [b]}]},
        {"name": "x", "steps": [{"subscriptions": [a]}, {"after": "PT5M", "subscriptions": [a]}]},
        {"name": "x", "steps": [{"subscriptions": [a]}] * 11},
        {"name": "x", "steps": [{"subscriptions": []}]},
        {"name": "x", "min_severity": "dire", "steps": [{"subscriptions": [a]}]},
        policy([a], [unknown]),
    ]
    for body in cases:
        resp = await client.post("/v1/escalation-policies", json=body, headers=h)
        assert resp.status == 422, (body, await resp.text())
        assert resp.content_type == "application/problem+json"
    problem = await (await client.post("/v1/escalation-policies", json=policy([a], [unknown]),
                                       headers=h)).json()
    assert problem["errors"][0]["loc"] == ["steps", 1, "subscriptions", 0]
    assert (await client.get("/v1/escalations?state=dormant", headers=h)).status == 422


async def test_a_held_subscription_belongs_to_one_policy_per_band(
        client: TestClient[Any, Any]) -> None:
    _t, key = await new_tenant(client, "Clean Power Alliance")
    h = bearer(key)
    a, b, c = await subscribe(client, key, "on-call", "backup", "other desk")
    first = await client.post("/v1/escalation-policies", headers=h, json=policy([a], [b]))
    assert first.status == 201
    again = await client.post("/v1/escalation-policies", headers=h, json=policy([c], [b]))
    assert again.status == 409 and again.content_type == "application/problem+json"
    body = await again.json()
    assert b in body["detail"] and (await first.json())["id"] in body["detail"]
    twice_first = await client.post("/v1/escalation-policies", headers=h, json=policy([a], [c]))
    assert twice_first.status == 409
    # Another band is another ladder.
    other = await client.post("/v1/escalation-policies", headers=h,
                              json=policy([c], [b], min_severity="critical"))
    assert other.status == 201, await other.text()
    # A policy replaced in place does not overlap itself.
    path = f"/v1/escalation-policies/{(await first.json())['id']}"
    assert (await client.put(path, headers=h, json=policy([a], [b], name="renamed"))).status \
        == 200


async def test_tenants_are_kept_apart(client: TestClient[Any, Any]) -> None:
    _a, key_a = await new_tenant(client, "Clean Power Alliance")
    _b, key_b = await new_tenant(client, "Desert Community Energy")
    a1, a2 = await subscribe(client, key_a, "on-call", "backup")
    (b1,) = await subscribe(client, key_b, "desk")
    mine = await client.post("/v1/escalation-policies", headers=bearer(key_a),
                             json=policy([a1], [a2]))
    assert mine.status == 201
    path = f"/v1/escalation-policies/{(await mine.json())['id']}"
    # B cannot page A's subscriptions, nor see, replace or delete A's policy.
    theirs = await client.post("/v1/escalation-policies", headers=bearer(key_b),
                               json=policy([b1], [a2]))
    assert theirs.status == 422 and a2 in (await theirs.json())["detail"]
    for method in ("GET", "DELETE"):
        assert (await client.request(method, path, headers=bearer(key_b))).status == 404
    assert (await client.put(path, headers=bearer(key_b), json=policy([b1]))).status == 404
    listed = await (await client.get("/v1/escalation-policies", headers=bearer(key_b))).json()
    assert listed["items"] == []
    assert (await client.get("/v1/escalation-policies")).status == 401
    assert (await client.get("/v1/escalations")).status == 401


async def test_a_run_shows_its_pages_and_its_acknowledgement(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    _t, key = await new_tenant(client, "Clean Power Alliance")
    h = bearer(key)
    oncall, backup = await subscribe(client, key, "on-call", "backup")
    made = await (await client.post("/v1/escalation-policies", headers=h,
                                    json=policy([oncall], [backup]))).json()
    eea = Condition(
        id="caiso.notice:202202696", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
        status=Status.ACTIVE, window=Window(start=clock.now(),
                                            end=clock.now() + timedelta(hours=3)),
        regions=("CAISO Grid",), attributes=NoticeAttributes(level="3"), revision=1,
        observed_at=clock.now())
    bus = MemoryBus()
    await bus.start()
    decider = Decider(store, bus, clock)
    await decider.refresh_index(force=True)
    await decider.handle(eea)
    clock.advance(600)
    await decider.tick()
    await bus.close()
    runs = await (await client.get(f"/v1/escalations?condition_id={eea.id}",
                                   headers=h)).json()
    [run] = runs["items"]
    # Its last step paged, the run is exhausted: nobody more to page, an ack still ends it.
    assert run["policy_id"] == made["id"] and run["state"] == "exhausted"
    assert run["step"] == 1 and run["acknowledgement"] is None
    pages = {p["subscription_id"]: p for p in run["pages"]}
    assert pages[oncall]["step"] == 0 and pages[backup]["step"] == 1
    assert pages[backup]["paged_at"] is not None
    paged = await (await client.get(f"/v1/notifications/{pages[backup]['key']}",
                                    headers=h)).json()
    assert paged["notification"]["escalation"] == {"run_id": run["id"],
                                                   "policy_id": made["id"], "step": 1}
    first = await (await client.get(f"/v1/notifications/{pages[oncall]['key']}",
                                    headers=h)).json()
    assert first["notification"]["escalation"] is None
    # The backup has it: the run ends acknowledged, and says by whom.
    ack = await client.post(f"/v1/notifications/{pages[backup]['key']}/ack", headers=h,
                            json={"by": "backup scheduler"})
    assert ack.status == 200, await ack.text()
    shown = await (await client.get("/v1/escalations?state=acknowledged", headers=h)).json()
    [done] = shown["items"]
    assert done["acknowledged_key"] == pages[backup]["key"]
    assert done["acknowledgement"]["by"] == "backup scheduler"
    assert (await (await client.get("/v1/escalations?state=exhausted",
                                    headers=h)).json())["items"] == []
    _o, other = await new_tenant(client, "Someone else")
    assert (await (await client.get("/v1/escalations",
                                    headers=bearer(other))).json())["items"] == []
