"""`capmon tenants` and `capmon subscriptions`, end to end on a SQLite store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from capmon.cli import main
from monitor.store import Store, endpoints

IMPORT = """
subscriptions:
  - name: CPA scheduling desk
    match:
      kinds: [caiso.eea, caiso.flex_alert, sce.dr_event, caiso.peak_forecast]
      min_severity: warning
      regions: [CAISO Grid, Southern CA Region, SCE-TAC, SCLD]
      programs: [CPP, BIP]
      thresholds:
        - {kind: caiso.peak_forecast, area: SCE-TAC, day: tomorrow, above: 23000,
           clear_below: 22500}
    transitions: [issued, updated, started, ended, cancelled]
    repeat_interval: PT4H
    channel: {type: webhook, url: "http://127.0.0.1:9000/hooks/capmon"}
    quiet_hours: {timezone: America/Los_Angeles, start: "22:00", end: "06:00",
                  bypass_severity: emergency}
  - name: on-call phone
    match: {kinds: [caiso.eea], min_severity: emergency}
    channel: {type: sms, phone: "+1 (415) 555-0100"}
"""


@pytest.fixture(autouse=True)
def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CAPMON_STORE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CAPMON_WEBHOOK_ALLOW_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("CAPMON_LOG_LEVEL", "warning")
    # Every channel configured; the tests of a missing one unset these.
    monkeypatch.setenv("CAPMON_API_LINK_SECRET", "link-secret-for-tests-0123456789")
    monkeypatch.setenv("CAPMON_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("CAPMON_TWILIO_AUTH_TOKEN", "twilio-token-for-tests")
    monkeypatch.setenv("CAPMON_TWILIO_FROM_NUMBER", "+15005550006")
    yield
    # The CLI points structlog at the captured stderr, which pytest closes after the test.
    structlog.reset_defaults()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tenants_and_subscriptions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "tenants", "add", "Clean Power Alliance",
                       "--admin-contact", "ops@cpa.example", "--json")
    assert code == 0
    tenant = json.loads(out.strip().splitlines()[-1])
    assert set(tenant) == {"id", "api_key", "health_subscription"}
    assert tenant["api_key"].startswith("cm_")
    health = tenant["health_subscription"]
    assert health["id"] and health["detail"].startswith("ops@cpa.example is told by email")

    code, out, _ = run(capsys, "tenants", "list", "--json")
    listed = json.loads(out.strip().splitlines()[-1])
    assert [(t["id"], t["name"]) for t in listed] == [(tenant["id"], "Clean Power Alliance")]
    assert "api_key" not in listed[0]

    code, out, _ = run(capsys, "tenants", "rotate-key", tenant["id"], "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["api_key"] != tenant["api_key"]

    f = tmp_path / "subs.yaml"
    f.write_text(IMPORT)
    code, out, err = run(capsys, "subscriptions", "import", str(f), "--tenant", tenant["id"],
                         "--json")
    assert code == 0, err
    created = json.loads(out.strip().splitlines()[-1])
    assert [c["name"] for c in created] == ["CPA scheduling desk", "on-call phone"]
    assert created[0]["secret"].startswith("whsec_") and created[1]["secret"] is None

    code, out, _ = run(capsys, "subscriptions", "add", "--tenant", tenant["id"], "--name",
                       "flex email", "--kind", "caiso.flex_alert", "--email",
                       "Desk@CPA.example", "--quiet-hours", "22:00-06:00", "--json")
    assert code == 0

    code, out, _ = run(capsys, "subscriptions", "list", "--tenant", tenant["id"], "--json")
    subs = {s["name"]: s for s in json.loads(out.strip().splitlines()[-1])}
    assert set(subs) == {"CPA scheduling desk", "on-call phone", "flex email",
                         "capmon health (admin contact)"}
    admin = subs["capmon health (admin contact)"]
    assert admin["id"] == health["id"] and admin["match"]["kinds"] == ["source.health"]
    assert admin["channel"] == {"type": "email", "address": "ops@cpa.example"}
    assert subs["on-call phone"]["channel"]["phone"] == "+14155550100"
    assert subs["CPA scheduling desk"]["match"]["thresholds"][0]["clear_below"] == 22500
    assert subs["flex email"]["quiet_hours"]["start"] == "22:00"
    assert all("secret" not in s for s in subs.values())

    code, out, _ = run(capsys, "subscriptions", "rm", subs["flex email"]["id"])
    assert code == 0
    code, out, _ = run(capsys, "subscriptions", "list", "--json")
    assert len(json.loads(out.strip().splitlines()[-1])) == 3
    code, out, _ = run(capsys, "tenants", "add", "Opted out", "--admin-contact",
                       "it@optout.example", "--no-health-alerts")
    assert code == 0 and "capmon health: the tenant opted out" in out


def test_import_is_all_or_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "tenants", "add", "Strict CCA", "--json")
    tenant = json.loads(out.strip().splitlines()[-1])
    f = tmp_path / "bad.yaml"
    f.write_text("""
- name: fine
  channel: {type: email, address: desk@cca.example}
- name: bad phone
  channel: {type: sms, phone: "555-0100"}
- name: metadata
  channel: {type: webhook, url: "https://169.254.169.254/latest"}
""")
    code, _out, err = run(capsys, "subscriptions", "import", str(f), "--tenant", tenant["id"])
    assert code == 1
    assert "#2 channel.sms.phone" in err and "E.164" in err
    assert "nothing was written" in err
    code, out, _ = run(capsys, "subscriptions", "list", "--json")
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_revoke_of_an_unknown_tenant_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tenants", "revoke", "no-such-tenant")
    assert code != 0 and out == ""
    assert err.strip().splitlines() == ["capmon tenants revoke: no tenant no-such-tenant"]
    code, out, _ = run(capsys, "tenants", "add", "Known CCA", "--json")
    tenant = json.loads(out.strip().splitlines()[-1])
    code, out, _ = run(capsys, "tenants", "revoke", tenant["id"])
    assert code == 0 and out.strip() == "revoked 1 key(s)"


def test_an_opted_out_phone_is_refused(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    code, out, _ = run(capsys, "tenants", "add", "Opt-out CCA", "--json")
    tenant = json.loads(out.strip().splitlines()[-1])

    async def stop() -> None:  # what an SMS STOP to an earlier subscription left behind
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
        async with store.begin() as conn:
            await endpoints.record_opt_out(conn, "sms", "+14155550100", "sms STOP",
                                           datetime.now(UTC))
        await store.close()

    asyncio.run(stop())
    code, _out, err = run(capsys, "subscriptions", "add", "--tenant", tenant["id"],
                          "--name", "phone", "--sms", "+14155550100")
    assert code == 1
    assert ("+14155550100 opted out (sms STOP); "
            "the recipient can opt in again by texting START") in err
    assert "nothing was written" in err


def test_a_heartbeat_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tenants", "add", "DCE", "--json")
    tenant = json.loads(out.strip().splitlines()[-1])["id"]
    code, _, err = run(capsys, "subscriptions", "add", "--tenant", tenant, "--name", "watch",
                       "--kind", "source.health", "--webhook", "http://127.0.0.1:9000/h",
                       "--heartbeat", "07:30", "--timezone", "America/Phoenix")
    assert code == 0, err
    code, out, _ = run(capsys, "subscriptions", "list", "--json")
    [sub] = json.loads(out)
    assert sub["heartbeat"] == {"at": "07:30", "timezone": "America/Phoenix"}
    code, _, err = run(capsys, "subscriptions", "add", "--tenant", tenant, "--name", "bad",
                       "--webhook", "http://127.0.0.1:9000/h", "--heartbeat", "7.30")
    assert code == 1 and "heartbeat.at: Value error, must be HH:MM" in err


def test_an_unconfigured_channel_is_refused(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "tenants", "add", "SJCE", "--json")
    tenant = json.loads(out.strip().splitlines()[-1])["id"]
    monkeypatch.delenv("CAPMON_TWILIO_AUTH_TOKEN")
    code, _, err = run(capsys, "subscriptions", "add", "--tenant", tenant, "--name", "phone",
                       "--sms", "+14155550100")
    assert code == 1
    assert ("#1 channel: the SMS channel is not configured: set CAPMON_TWILIO_AUTH_TOKEN"
            in err) and "nothing was written" in err


def test_voice_subscriptions_by_import_and_by_flag(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    code, out, _ = run(capsys, "tenants", "add", "Voice CCA", "--json")
    tenant = json.loads(out.strip().splitlines()[-1])
    f = tmp_path / "voice.yaml"
    f.write_text("""
- name: duty scheduler
  match: {kinds: [caiso.eea], min_severity: emergency}
  channel: {type: voice, phone: "+1 (415) 555-0101", retries: 3, retry_interval: PT5M}
- name: too eager
  channel: {type: voice, phone: "+14155550102", retry_interval: PT10S}
""")
    code, _out, err = run(capsys, "subscriptions", "import", str(f), "--tenant", tenant["id"])
    assert code == 1 and "#2 channel.voice.retry_interval" in err and "PT1M" in err
    f.write_text(f.read_text().split("- name: too eager")[0])
    code, out, err = run(capsys, "subscriptions", "import", str(f), "--tenant", tenant["id"],
                         "--json")
    assert code == 0, err
    [created] = json.loads(out.strip().splitlines()[-1])
    assert created["name"] == "duty scheduler" and created["secret"] is None
    code, out, err = run(capsys, "subscriptions", "add", "--tenant", tenant["id"], "--name",
                         "night desk", "--kind", "caiso.eea", "--voice", "+14155550103",
                         "--json")
    assert code == 0, err
    code, out, _ = run(capsys, "subscriptions", "list", "--tenant", tenant["id"], "--json")
    subs = {s["name"]: s for s in json.loads(out.strip().splitlines()[-1])}
    assert subs["night desk"]["channel"] == {"type": "voice", "phone": "+14155550103",
                                             "retries": 2, "retry_interval": "PT2M"}
    assert subs["duty scheduler"]["channel"] == {"type": "voice", "phone": "+14155550101",
                                                 "retries": 3, "retry_interval": "PT5M"}
