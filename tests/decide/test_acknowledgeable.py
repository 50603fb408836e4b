"""Decide marks a notification acknowledgeable when its severity reaches the subscription's
`ack_severity`: the SMS then says how to take it, and webhook receivers know they may."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.ledger import acks
from monitor.store import Store
from tests.decide.test_silences import eea, flex
from tests.decide.timeline import decide_replay

PT = ZoneInfo("America/Los_Angeles")
SMS = {"type": "sms", "phone": "+14155550100"}


async def test_acknowledgeable_follows_the_subscriptions_ack_severity(store: Store) -> None:
    revisions = [flex("09/07", "09/07 09:00"),
                 eea("2", "202202710", "09/08 17:00", "09/08 20:00", "09/08 14:00")]
    until = datetime(2022, 9, 8, 16, 0, tzinfo=PT)
    decided = await decide_replay(store, revisions, until, {
        "default": {"channel": SMS, "transitions": ["issued"]},
        "watchful": {"channel": SMS, "transitions": ["issued"], "ack_severity": "watch"}})
    default = {n.items[0].condition.id: n.acknowledgeable for n in decided.published["default"]}
    watchful = {n.items[0].condition.id: n.acknowledgeable
                for n in decided.published["watchful"]}
    # Emergency is the default floor: the EEA 2 can be acknowledged, the Flex Alert (watch)
    # only by the subscription that asked for it.
    assert default == {"caiso.flex:2022-09-07": False, "caiso.notice:202202710": True}
    assert watchful == {"caiso.flex:2022-09-07": True, "caiso.notice:202202710": True}


async def test_an_all_clear_takes_no_acknowledgement(store: Store) -> None:
    # An EEA 2's issue, start and end to one subscriber: the issue and the start can be
    # taken, the all-clear says only that it is over (no "Reply ACK", no "press 1"), and the
    # ledger refuses to acknowledge it.
    revisions = [eea("2", "202202710", "09/08 17:00", "09/08 20:00", "09/08 14:00")]
    until = datetime(2022, 9, 8, 21, 0, tzinfo=PT)
    decided = await decide_replay(store, revisions, until, {
        "phone": {"channel": SMS, "transitions": ["issued", "started", "ended"]}})
    by_transition = {n.items[0].transition.value: n for n in decided.published["phone"]}
    assert {t: n.acknowledgeable for t, n in by_transition.items()} == {
        "issued": True, "started": True, "ended": False}
    async with store.begin() as conn:
        with pytest.raises(acks.AckRefused) as refused:
            await acks.acknowledge(conn, by_transition["ended"].key, "+14155550100",
                                   acks.Via.API, until)
    assert refused.value.reason == "all_clear"
    async with store.begin() as conn:
        ack = await acks.acknowledge(conn, by_transition["started"].key, "+14155550100",
                                     acks.Via.API, until)
    assert ack.via is acks.Via.API
