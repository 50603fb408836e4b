"""`capmon dlq list | replay` on a real Kafka broker: a record decide could not read is
listed with where it came from and why, and replaying puts the original bytes back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from capmon.cli import main
from monitor.bus import Message
from monitor.bus.kafka import KafkaBus
from monitor.bus.runner import RetryPolicy, consume
from monitor.clock import ManualClock
from monitor.config import KafkaSettings
from monitor.envelope import Record
from monitor.topics import TopicSpec


def test_list_and_replay(kafka_settings: KafkaSettings, unique: Callable[[str], str],
                         monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    topic, dlq, group = unique("capmon.test"), unique("capmon.test.dlq"), unique("g")
    garbage = Record(key="caiso.notice:1", value=b"\x00not an event", headers=())

    async def dead_letter_one() -> None:
        bus = KafkaBus(kafka_settings)
        await bus.start()
        await bus.ensure_topics([TopicSpec(t, 1, 3_600_000, "delete") for t in (topic, dlq)])
        await bus.publish_records(topic, [garbage])
        stop = asyncio.Event()

        async def handler(msg: Message) -> None:
            stop.set()
            msg.event()  # not a CloudEvent: BusError(reason="schema")

        await consume(bus, [topic], group, handler, stop,
                      ManualClock(datetime.now(UTC), auto_advance=True), dead_letters=dlq,
                      policy=RetryPolicy(first_backoff_s=0.01))
        await bus.close()

    asyncio.run(dead_letter_one())
    capsys.readouterr()  # the consumer's own log lines
    monkeypatch.setenv("CAPMON_KAFKA_BOOTSTRAP", kafka_settings.bootstrap)
    monkeypatch.setenv("CAPMON_LOG_LEVEL", "warning")
    assert main(["dlq", "list", "--topic", dlq, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1
    assert rows[0]["key"] == "caiso.notice:1" and rows[0]["from"] == f"{topic}/0/0"
    assert rows[0]["group"] == group and rows[0]["attempts"] == 1
    assert rows[0]["error"].startswith("BusError: undecodable CloudEvent")

    assert main(["dlq", "replay", "--topic", dlq, "--position", "0:5"]) == 1
    assert "no dead letter at 0:5" in capsys.readouterr().out
    assert main(["dlq", "replay", "--topic", dlq, "--position", rows[0]["position"]]) == 0
    assert "replayed 1 record(s)" in capsys.readouterr().out

    async def source_topic() -> list[Record]:
        bus = KafkaBus(kafka_settings)
        await bus.start()
        try:
            return [m.record for m in await bus.read_topic(topic)]
        finally:
            await bus.close()

    assert asyncio.run(source_topic()) == [garbage, garbage], "the original bytes, again"


def test_embedded_bus_says_where_dead_letters_are(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CAPMON_KAFKA_BOOTSTRAP", raising=False)
    assert main(["dlq", "list"]) == 2
    assert "record_dead_lettered" in capsys.readouterr().err
