"""The producers' sources and the names monitor/ gives them agree."""

from __future__ import annotations

from monitor.config import Settings
from monitor.source_health import SOURCE_LABELS, enabled_sources
from producers.caiso_mailbox import SOURCE as MAILBOX
from producers.catalog import build_sources


def test_every_source_has_a_label_and_enabled_sources_follow_the_settings() -> None:
    polled = [s.name for s in build_sources(Settings())]
    assert set(SOURCE_LABELS) == {*polled, MAILBOX}
    assert enabled_sources(Settings()) == tuple(polled)
    mail = Settings(imap={"host": "imap.example.org"})
    assert enabled_sources(mail) == (*polled, MAILBOX)
    some = Settings(sources={"enabled": ["sce-dr", MAILBOX],
                             "notice_feed_url": "http://127.0.0.1:1/replay/notices"})
    assert enabled_sources(some) == ("sce-dr", MAILBOX)
    assert [s.name for s in build_sources(some)] == ["sce-dr"]
