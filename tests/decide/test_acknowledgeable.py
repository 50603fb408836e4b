"""Decide marks a notification acknowledgeable when its severity reaches the subscription's
`ack_severity`: the SMS then says how to take it, and webhook receivers know they may."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

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
