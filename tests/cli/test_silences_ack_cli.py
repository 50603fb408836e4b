"""`capmon silences` and `capmon notifications ack | list | show`, end to end on a SQLite
store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import ledger
from monitor.attributes import NoticeAttributes
from monitor.events import Condition, Kind, Severity, Status
from monitor.notifications import (
    Notification,
    NotificationItem,
    SmsChannel,
    Transition,
    notification_key,
)
from monitor.store import Store
from tests.cli.test_tenants_subscriptions_cli import _store, run  # noqa: F401 - the fixture

PHONE = "+14155550100"


def tenant_and_sms(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    code, out, err = run(capsys, "tenants", "add", "DCE", "--json")
    assert code == 0, err
    tenant = json.loads(out)["id"]
    code, out, err = run(capsys, "subscriptions", "add", "--tenant", tenant, "--name", "phone",
                         "--sms", PHONE, "--json")
    assert code == 0, err
    return tenant, json.loads(out)[0]["id"]


def test_silences(capsys: pytest.CaptureFixture[str]) -> None:
    tenant, sub = tenant_and_sms(capsys)
    end = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    code, out, err = run(capsys, "silences", "add", "--tenant", tenant, "--kind",
                         "caiso.flex_alert", "--subscription", sub, "--end", end, "--by",
                         "Dana", "--comment", "handled by phone", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["status"] == "active" and made["match"]["subscription_ids"] == [sub]
    code, out, _ = run(capsys, "silences", "list", "--tenant", tenant, "--state", "active")
    assert made["id"] in out and "handled by phone" in out
    # Refusals: no matcher, an end already past, another tenant's subscription.
    code, _, err = run(capsys, "silences", "add", "--tenant", tenant, "--end", end, "--by",
                       "Dana", "--comment", "everything")
    assert code != 0 and "at least one matcher" in err
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    code, _, err = run(capsys, "silences", "add", "--tenant", tenant, "--kind", "caiso.rmo",
                       "--end", past, "--by", "Dana", "--comment", "late")
    assert code != 0 and "past" in err
    code, out, _ = run(capsys, "tenants", "add", "CPA", "--json")
    other = json.loads(out)["id"]
    code, _, err = run(capsys, "silences", "add", "--tenant", other, "--subscription", sub,
                       "--end", end, "--by", "x", "--comment", "y")
    assert code == 1 and "no subscription" in err
    assert run(capsys, "silences", "expire", "--tenant", other, made["id"])[0] == 1
    code, out, _ = run(capsys, "silences", "expire", "--tenant", tenant, made["id"])
    assert code == 0 and "expired" in out
    assert run(capsys, "silences", "rm", "--tenant", tenant, made["id"])[0] == 0
    code, out, _ = run(capsys, "silences", "list", "--tenant", tenant)
    assert made["id"] not in out


def test_notifications_ack(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tenant, sub = tenant_and_sms(capsys)
    now = datetime.now(UTC)
    condition = Condition(id="caiso.notice:202202696", kind=Kind.CAISO_EEA,
                          severity=Severity.CRITICAL, status=Status.ACTIVE,
                          attributes=NoticeAttributes(level="3"), revision=1, observed_at=now)
    n = Notification(
        key=notification_key(sub, condition.id, Transition.ISSUED, {}), tenant_id=tenant,
        subscription_id=sub, channel=SmsChannel(phone=PHONE), decided_at=now,
        severity=Severity.CRITICAL, items=(NotificationItem(transition=Transition.ISSUED,
                                                            condition=condition),),
        summary="CAISO EEA 3 issued")

    async def admit() -> None:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
        try:
            async with store.begin() as conn:
                await ledger.admit(conn, [n], now)
        finally:
            await store.close()

    asyncio.run(admit())
    code, out, err = run(capsys, "notifications", "ack", n.key, "--by", "ops desk", "--json")
    assert code == 0, err
    assert json.loads(out)["via"] == "cli" and json.loads(out)["by"] == "ops desk"
    code, _, err = run(capsys, "notifications", "ack", n.key, "--by", "someone else")
    assert code == 1 and "acknowledged by ops desk" in err

    code, out, err = run(capsys, "notifications", "show", n.key, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["acknowledgement"]["by"] == "ops desk"
    assert shown["acknowledgement"]["via"] == "cli" and shown["attempts"] == []
    code, out, err = run(capsys, "notifications", "show", n.key)
    assert code == 0, err
    assert "acknowledgement:" in out and "acknowledged by ops desk (cli) at " in out
    code, out, err = run(capsys, "notifications", "list", "--tenant", tenant, "--json")
    assert code == 0, err
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert listed["key"] == n.key and listed["acknowledgement"]["by"] == "ops desk"
    code, out, err = run(capsys, "notifications", "list", "--tenant", tenant)
    assert code == 0, err
    assert out.startswith(n.key) and "\tacknowledged by ops desk (cli) at " in out
    code, out, err = run(capsys, "notifications", "list", "--tenant", "no-such-tenant")
    assert code == 0 and out == ""
    code, _, err = run(capsys, "notifications", "show", "0" * 40)
    assert code == 1 and "no notification" in err
    code, _, err = run(capsys, "notifications", "ack", "0" * 40, "--by", "x")
    assert code == 1 and "no such notification" in err
