"""`capmon escalation-policies` and `capmon escalations`, end to end on a SQLite store, with
a run started by the real decide."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from consumers.decide.decider import Decider
from monitor.attributes import NoticeAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.store import Store
from tests.cli.test_tenants_subscriptions_cli import _store, run  # noqa: F401 - the fixture


def subscribe(capsys: pytest.CaptureFixture[str], tenant: str, name: str, phone: str) -> str:
    code, out, err = run(capsys, "subscriptions", "add", "--tenant", tenant, "--name", name,
                         "--sms", phone, "--json")
    assert code == 0, err
    return str(json.loads(out)[0]["id"])


def decide_one_eea(tmp_path: Path) -> None:
    now = datetime.now(UTC)

    async def go() -> None:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
        bus = MemoryBus()
        await bus.start()
        try:
            decider = Decider(store, bus, ManualClock(now))
            await decider.refresh_index(force=True)
            await decider.handle(Condition(
                id="caiso.notice:202202696", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
                status=Status.ACTIVE, window=Window(start=now, end=now + timedelta(hours=2)),
                regions=("CAISO Grid",), attributes=NoticeAttributes(level="3"), revision=1,
                observed_at=now))
        finally:
            await bus.close()
            await store.close()

    asyncio.run(go())


def test_policies_and_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "tenants", "add", "DCE", "--json")
    assert code == 0, err
    tenant = json.loads(out)["id"]
    oncall = subscribe(capsys, tenant, "on-call", "+14155550100")
    backup = subscribe(capsys, tenant, "backup", "+14155550101")
    spec = {"name": "EEA on-call", "min_severity": "emergency", "steps": [
        {"subscriptions": [oncall]}, {"after": "PT10M", "subscriptions": [backup]}]}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out, err = run(capsys, "escalation-policies", "create", "--tenant", tenant,
                         "--file", str(path), "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["steps"][1]["subscriptions"] == [backup]
    code, out, _ = run(capsys, "escalation-policies", "list", "--tenant", tenant)
    assert code == 0 and made["id"] in out and "PT10M: 1" in out
    code, out, _ = run(capsys, "escalation-policies", "show", "--tenant", tenant, made["id"])
    assert code == 0 and json.loads(out)["name"] == "EEA on-call"
    # Refusals: an overlap in the band, another tenant's subscription, a broken ladder.
    code, _, err = run(capsys, "escalation-policies", "create", "--tenant", tenant,
                       "--file", str(path))
    assert code == 1 and "already in the first step" in err
    code, out, _ = run(capsys, "tenants", "add", "CPA", "--json")
    other = json.loads(out)["id"]
    code, _, err = run(capsys, "escalation-policies", "create", "--tenant", other,
                       "--file", str(path))
    assert code == 1 and f"no subscription {oncall}" in err
    path.write_text(json.dumps({**spec, "steps": [{"subscriptions": [oncall]},
                                                  {"subscriptions": [backup]}]}))
    code, _, err = run(capsys, "escalation-policies", "create", "--tenant", tenant,
                       "--file", str(path))
    assert code != 0 and "needs 'after'" in err
    assert run(capsys, "escalation-policies", "show", "--tenant", other, made["id"])[0] == 1

    decide_one_eea(tmp_path)
    code, out, err = run(capsys, "escalations", "list", "--tenant", tenant, "--json")
    assert code == 0, err
    [started] = [json.loads(line) for line in out.splitlines()]
    assert started["state"] == "running" and started["policy_id"] == made["id"]
    assert {p["subscription_id"]: p["key"] is not None for p in started["pages"]} == {
        oncall: True, backup: False}
    code, out, _ = run(capsys, "escalations", "list", "--tenant", tenant, "--state", "running")
    assert started["id"] in out and "1 paged" in out
    assert run(capsys, "escalations", "list", "--tenant", other)[1] == ""

    assert run(capsys, "escalation-policies", "delete", "--tenant", other, made["id"])[0] == 1
    code, out, _ = run(capsys, "escalation-policies", "delete", "--tenant", tenant, made["id"])
    assert code == 0 and "deleted" in out
    code, out, _ = run(capsys, "escalations", "list", "--tenant", tenant, "--state",
                       "cancelled")
    assert started["id"] in out
