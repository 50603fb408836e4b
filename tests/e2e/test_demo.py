"""`capmon demo` end to end: the 2022 heat wave through the real producers, decide and deliver,
into the local sinks, on the embedded bus and once on the real Kafka broker.

The demo runs as users run it (the CLI, in a subprocess); the assertions read what the sinks
received (`deliveries.jsonl`) and check it per subscriber against the subscriptions of the
scenario and the real CAISO record: who heard the EEA 3 of 9/6, when, and what nobody heard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parents[2]
Delivery = dict[str, Any]


def run_demo(out: Path, *extra: str) -> tuple[list[Delivery], dict[str, Any], list[Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "capmon.cli", "demo", "--out", str(out), "--quiet", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 bad signatures, 0 duplicates" in proc.stdout
    deliveries = [json.loads(line) for line in (out / "deliveries.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    subs = json.loads((out / "subscriptions.json").read_text())
    return deliveries, summary, subs


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[list[Delivery], dict[str, Any], list[Any]]:
    return run_demo(tmp_path_factory.mktemp("demo-embedded"))


def by_name(deliveries: list[Delivery], subs: list[Any]) -> dict[str, list[Delivery]]:
    names = {s["id"]: s["name"] for s in subs}
    out: dict[str, list[Delivery]] = {s["name"]: [] for s in subs}
    for d in deliveries:
        out[names[d["subscription_id"]]].append(d)
    return out


def items(ds: list[Delivery]) -> list[tuple[str, str, str]]:
    """(Pacific 'MM-DD HH:MM', transition, condition id) of every item, in order."""
    return sorted((d["received_at"][5:16].replace("T", " "), t, c)
                  for d in ds for t, c in zip(d["transitions"], d["condition_ids"], strict=True))


EEA3 = "caiso.notice:202202696"


def test_every_message_is_well_formed_and_signed(embedded: tuple[Any, Any, Any]) -> None:
    deliveries, summary, subs = embedded
    assert summary["deliveries"] == len(deliveries) > 300
    assert summary["deliveries_by_channel"] == dict(Counter(d["channel"] for d in deliveries))
    secrets = {s["id"]: s["secret"] for s in subs}
    for d in deliveries:
        assert set(d) >= {"channel", "subscription_id", "recipient", "received_at",
                          "notification_key", "severity", "kinds", "condition_ids",
                          "signature_verified", "headers", "body"}
        assert datetime.fromisoformat(d["received_at"]).utcoffset() is not None
        assert d["notification_key"] and d["condition_ids"] and d["severity"]
        if d["channel"] != "webhook":
            assert d["signature_verified"] is None
            continue
        # Verify independently with the reference library and subscriptions.json's secret.
        h = {k.lower(): v for k, v in d["headers"].items()}
        assert h["webhook-id"] == d["notification_key"]
        expected = Webhook(secrets[d["subscription_id"]]).sign(
            h["webhook-id"], datetime.fromtimestamp(int(h["webhook-timestamp"]), UTC), d["body"])
        assert expected in h["webhook-signature"].split(" ")
        assert d["signature_verified"] is True
        body = json.loads(d["body"])
        assert body["specversion"] == "1.0" and body["id"] == d["notification_key"]


def heard(ds: list[Delivery]) -> list[Delivery]:
    """What reached someone: a call that rang out did not (its retry is no second hearing)."""
    return [d for d in ds if d["call"] is None or d["call"]["outcome"] == "completed"]


def test_each_subscriber_hears_each_transition_once(embedded: tuple[Any, Any, Any]) -> None:
    deliveries, summary, subs = embedded
    for name, ds in by_name(deliveries, subs).items():
        pairs = Counter((t, c) for _, t, c in items(heard(ds)))
        assert [p for p, n in pairs.items() if n > 1] == [], name
    assert summary["duplicates"] == 0
    # Dead: only the on-call's two calls (the EEA 3 and its all-clear), which rang out.
    assert summary["notifications_by_state"].get("dead", 0) == 2
    assert summary["calls_unanswered"] == 6


def test_dce_escalation_of_the_eea3(embedded: tuple[Any, Any, Any]) -> None:
    """The on-call scheduler sleeps through the 17:26 EEA 3 (SMS unanswered, the call rings
    out and is tried again after 2 and 4 minutes); nobody acknowledging for 10 minutes calls
    the backup at 17:36, who presses 1; the director is never paged; the all-clear at 20:00
    reaches everyone who was paged."""
    deliveries, summary, subs = embedded
    named = by_name(deliveries, subs)
    texts = items(named["DCE scheduler phone"])
    oncall = named["DCE on-call scheduler (voice)"]
    backup = named["DCE backup scheduler (voice)"]
    assert ("09-06 17:26", "issued", EEA3) in texts
    assert [(d["received_at"][5:16], d["call"]["outcome"], d["call"]["attempt"])
            for d in oncall if EEA3 in d["condition_ids"] and "issued" in d["transitions"]] \
        == [("09-06T17:26", "no-answer", 1), ("09-06T17:28", "no-answer", 2),
            ("09-06T17:30", "no-answer", 3)]
    [call] = [d for d in backup if "issued" in d["transitions"]]
    assert call["received_at"] == "2022-09-06T17:36:00-07:00"
    assert call["condition_ids"] == [EEA3] and call["channel"] == "voice"
    assert call["call"]["outcome"] == "completed" and call["call"]["keys"] == ["1"]
    assert "CAISO EEA 3 issued" in call["body"] and "Press 1 to acknowledge" in call["body"]
    assert named["DCE director of power resources"] == []

    backup_phone = call["recipient"]
    # The one acknowledgement: the backup's 1 on the 20:00 all-clear call takes none (an
    # all-clear leaves nothing to own).
    acks = summary["acknowledgements"]
    assert acks == [{"key": call["notification_key"],
                     "subscription": "DCE backup scheduler (voice)", "by": backup_phone,
                     "via": "voice", "at": "2022-09-06T17:36:00-07:00"}]
    [run] = [r for r in summary["escalations"] if r["condition"] == EEA3]
    assert (run["policy"], run["tenant"], run["state"]) == (
        "EEA 3 on-call", "Desert Community Energy", "acknowledged")
    assert [(s["step"], s["at"], sorted(s["subscriptions"])) for s in run["steps"]] == [
        (0, "2022-09-06T17:26:00-07:00",
         ["DCE on-call scheduler (voice)", "DCE scheduler phone"]),
        (1, "2022-09-06T17:36:00-07:00", ["DCE backup scheduler (voice)"])]
    assert run["steps"][1]["keys"] == [call["notification_key"]]
    assert run["acknowledgement"] == acks[0]

    # The all-clear at 20:00 to each subscription the run paged.
    for name in ("DCE scheduler phone", "DCE on-call scheduler (voice)",
                 "DCE backup scheduler (voice)"):
        assert ("09-06 20:00", "ended", EEA3) in items(named[name]), name
    # Nothing else on the voice channel: EEA 2 is emergency, below the ladder's band.
    assert {c for d in oncall + backup for c in d["condition_ids"]} == {EEA3}


def test_dce_scheduler_phone_timeline(embedded: tuple[Any, Any, Any]) -> None:
    """EEA 2 and up and BIP events only; quiet 21:00-07:00 except critical: so the EEA 3 of
    9/6 arrives at 17:26 and its all-clear at 20:00, and the 21:00 all-clears of the EEA 2s
    are held back by quiet hours (they are 'emergency', below the bypass)."""
    deliveries, _, subs = embedded
    phone = by_name(deliveries, subs)["DCE scheduler phone"]
    assert {d["channel"] for d in phone} == {"sms"}
    got = items(phone)
    assert ("09-06 17:26", "issued", EEA3) in got
    assert ("09-06 20:00", "ended", EEA3) in got
    assert ("09-07 13:20", "issued", "caiso.notice:202202705") in got
    # The superseding 20:21 notice moved its end to 20:30: the all-clear comes then.
    assert ("09-07 20:30", "ended", "caiso.notice:202202705") in got
    for d in phone:
        local = datetime.fromisoformat(d["received_at"])
        quiet = local.hour >= 21 or local.hour < 7
        assert not quiet or d["severity"] == "critical", d["received_at"]
        assert d["severity"] in ("emergency", "critical")
        assert set(d["kinds"]) <= {"caiso.eea", "sce.dr_event"}
    # Nothing before the first EEA 2 (9/5 17:51), nothing about CPP or Flex Alerts.
    assert min(t for t, _, _ in got) == "09-05 17:51"
    assert not [c for _, _, c in got if "CPP" in c or "flex" in c]


def test_cpa_scheduling_desk_hears_eeas_and_its_programs_only(
        embedded: tuple[Any, Any, Any]) -> None:
    deliveries, _, subs = embedded
    desk = by_name(deliveries, subs)["CPA scheduling desk (on-call phone)"]
    got = items(desk)
    # `programs: [BIP, SDP, API]` narrows DR events, not the EEAs.
    assert ("09-06 10:09", "issued", "caiso.notice:202202691") in got  # EEA 1
    assert ("09-06 17:26", "issued", EEA3) in got
    dr = {c for _, _, c in got if c.startswith("sce.dr:")}
    assert dr and all(c.split(":")[1].split("-")[0] in {"BIP", "SDP", "API"} for c in dr)
    # The SCE-TAC threshold (above 23,000 MW, tomorrow): crossed by the 9/5 DAM forecast.
    assert any(c.startswith("caiso.peak_forecast:SCE-TAC:") for _, _, c in got)


def test_mailboxes_and_webhooks_hear_the_whole_heat_wave(
        embedded: tuple[Any, Any, Any]) -> None:
    deliveries, _, subs = embedded
    named = by_name(deliveries, subs)
    mailbox = items(named["CPA power operations mailbox"])
    # The seven RMO notices issued 8/29 11:35-11:43 for 8/31 .. 9/6.
    assert len({c for t, k, c in mailbox if t.startswith("08-29") and k == "issued"
                and c.startswith("caiso.notice:")}) == 7
    for name in ("CPA risk system webhook", "DCE load-management system webhook"):
        hook = items(named[name])
        assert ("09-06 17:26", "issued", EEA3) in hook
        assert ("09-07 20:21", "updated", "caiso.notice:202202705") in hook
    # Every source stayed fresh: the mailbox subscribed to source.health heard none.
    assert not [c for _, _, c in mailbox if c.startswith("source.health")]


def test_the_same_on_kafka(embedded: tuple[Any, Any, Any], kafka_bootstrap: str,
                           tmp_path: Path) -> None:
    """The real broker delivers the same items to the same subscribers (grouping may differ
    with partition order, the items and their order of transitions do not)."""
    k_deliveries, k_summary, k_subs = run_demo(tmp_path / "demo-kafka", "--kafka",
                                               kafka_bootstrap)
    assert k_summary["bus"] == "kafka"
    e_deliveries, _, e_subs = embedded

    def item_sets(ds: list[Delivery], subs: list[Any]) -> dict[str, Counter[tuple[str, str]]]:
        return {n: Counter((t, c) for _, t, c in items(x))
                for n, x in by_name(ds, subs).items()}

    assert item_sets(k_deliveries, k_subs) == item_sets(e_deliveries, e_subs)
    phone = items(by_name(k_deliveries, k_subs)["DCE scheduler phone"])
    assert ("09-06 17:26", "issued", EEA3) in phone


def test_cpa_silence_holds_back_the_9_8_flex_alert_only(
        embedded: tuple[Any, Any, Any]) -> None:
    # subscriptions.yaml silences Flex Alert No. 108 (9/8) for CPA: its mailbox and risk
    # system hear nothing of it, DCE hears all of it, and CPA still hears 9/7's and 9/9's.
    deliveries, summary, subs = embedded
    named = by_name(deliveries, subs)
    flex108 = "caiso.flex:108"
    for name in ("CPA power operations mailbox", "CPA risk system webhook"):
        got = items(named[name])
        assert not [c for _, _, c in got if c == flex108], name
        assert {"caiso.flex:107", "caiso.flex:109"} <= {c for _, _, c in got}, name
    for name in ("DCE operations mailbox", "DCE load-management system webhook"):
        heard = [k for _, k, c in items(named[name]) if c == flex108]
        assert sorted(heard) == ["ended", "issued", "started"], name
    # Issue, start and all-clear, for each of CPA's two subscriptions.
    assert summary["suppressed_by_reason"]["silenced"] == 6
