"""`Payloads`: the JSON form of many notifications sharing items, each item dumped once,
equal to each notification's own `model_dump`."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.notifications import Payloads
from tests.deliver.helpers import notification


def test_payloads_equal_model_dump_and_share_each_item_once() -> None:
    now = datetime(2022, 9, 6, 17, 26, tzinfo=UTC)
    one = notification("t1", "sub-1", "webhook", "https://a.example/h", n=1, decided_at=now)
    # The same item object in a second subscriber's notification, as a fan-out builds them.
    other = one.model_copy(update={"key": "k" * 40, "subscription_id": "sub-2"})
    assert other.items[0] is one.items[0]
    dump = Payloads()
    a, b = dump(one), dump(other)
    assert a == one.model_dump(mode="json")
    assert b == other.model_dump(mode="json")
    assert a["items"][0] is b["items"][0]  # dumped once
    assert b["subscription_id"] == "sub-2" and a["subscription_id"] == "sub-1"
