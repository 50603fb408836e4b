"""The demo's subscribers file: escalation policies naming subscriptions by name, resolved to
the stored ids on SQLite and PostgreSQL; how each phone answers, as the stand-in's call
behaviours; and clear errors for a name, a policy or a phone the file gets wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from capmon.demo import DEFAULT_SCENARIO, subscribers
from monitor.errors import ConfigError
from monitor.events import Severity
from monitor.store import Store
from monitor.store import escalation_policies as policy_store

NOW = datetime(2022, 8, 29, 7, tzinfo=UTC)
SUBS = """
tenants:
  - name: Test CCA
    slug: t
    subscriptions:
      - {name: on-call text, match: {kinds: [caiso.eea]},
         channel: {type: sms, phone: "+14155550100"}}
      - {name: backup call, match: {kinds: [caiso.eea]},
         channel: {type: voice, phone: "+14155550101"}}
    escalation_policies:
      - name: EEA ladder
        min_severity: critical
        steps:
          - subscriptions: [on-call text]
          - {after: PT10M, subscriptions: [%s]}
phones:
  "+14155550101": {answer: human, digits: ["1"]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subscriptions.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_scenario_file_has_dce_ladder_and_phones() -> None:
    story = subscribers.read_file(DEFAULT_SCENARIO / "subscriptions.yaml")
    dce = next(t for t in story.tenants if t.slug == "dce")
    [policy] = dce.policies
    names = [[dce.subscriptions[int(i)].name for i in step.subscriptions]
             for step in policy.steps]
    assert names == [["DCE scheduler phone", "DCE on-call scheduler (voice)"],
                     ["DCE backup scheduler (voice)"], ["DCE director of power resources"]]
    assert policy.min_severity is Severity.CRITICAL
    assert [s.after for s in policy.steps] == [None, "PT10M", "PT10M"]
    oncall, backup = story.phones["+17605550187"], story.phones["+17605550163"]
    assert oncall.behaviour().answer == "no-answer"
    assert (backup.behaviour().answer, backup.behaviour().digits) == ("human", ("1",))


async def test_policy_steps_are_stored_with_the_subscription_ids(store: Store,
                                                                  tmp_path: Path) -> None:
    story = subscribers.read_file(write(tmp_path, SUBS % "backup call"))
    subs = await subscribers.load(store, story, lambda sub_id: f"http://h/{sub_id}", NOW)
    ids = {s.name: s.id for s in subs}
    async with store.connect() as conn:
        [policy] = await policy_store.list_policies(conn, subs[0].tenant_id)
    assert policy.name == "EEA ladder"
    assert [s.subscriptions for s in policy.steps] == [[ids["on-call text"]],
                                                      [ids["backup call"]]]


def test_an_unknown_subscription_name_is_named_with_its_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        subscribers.read_file(write(tmp_path, SUBS % "the director"))
    assert ("tenants[0].escalation_policies[0].steps[1].subscriptions[0]: no subscription "
            "named 'the director' in this tenant") in str(err.value)


def test_a_policy_and_a_phone_the_api_would_refuse(tmp_path: Path) -> None:
    text = (SUBS % "backup call").replace("PT10M", "PT10S").replace(
        '"+14155550101": {answer: human', '"+14155550101": {answer: asleep')
    with pytest.raises(ConfigError) as err:
        subscribers.read_file(write(tmp_path, text + '  "555-0199": {answer: busy}\n'))
    message = str(err.value)
    assert "tenants[0].escalation_policies[0]." in message and "at least PT1M" in message
    assert "phones['+14155550101'].answer" in message
    assert "phones['555-0199']: not an E.164 phone number" in message


async def test_a_subscription_held_by_two_ladders_of_a_band_stops_the_load(
        store: Store, tmp_path: Path) -> None:
    text = (SUBS % "backup call").replace("phones:", """      - name: second ladder
        min_severity: critical
        steps:
          - subscriptions: [on-call text]
phones:""")
    story = subscribers.read_file(write(tmp_path, text))
    with pytest.raises(ConfigError, match="escalation policy 'second ladder': subscription"):
        await subscribers.load(store, story, lambda sub_id: f"http://h/{sub_id}", NOW)
