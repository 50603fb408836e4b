"""Shared fixtures: the clock, stores on SQLite and PostgreSQL, buses embedded and on Kafka.

Integration fixtures need the real services that `make test` (and CI) start:
`CAPMON_TEST_KAFKA` (host:port of a Kafka broker) and `CAPMON_TEST_PG_URL` (an asyncpg URL
whose role may create databases). If one is missing, the tests that need it fail with a
clear message: they never skip, so a missing service can't hide behind a green run.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from monitor.bus import Bus, MemoryBus
from monitor.clock import ManualClock
from monitor.config import KafkaSettings
from monitor.store import Store
from monitor.topics import TopicSpec

FIXTURES = Path(__file__).parent / "fixtures"


def _require_env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: this test needs {what}. Run `make test`, which starts "
                    "the services, or export it yourself.", pytrace=False)
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _require_env("CAPMON_TEST_KAFKA", "a real Kafka broker (deploy/kafka/start)")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return _require_env("CAPMON_TEST_PG_URL", "a real PostgreSQL server (deploy/postgres/start)")


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2022, 9, 6, 17, 0, tzinfo=UTC))


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names per test for topics, groups and databases."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


def _admin_sql(admin_url: str, statement: str) -> None:
    """Run one statement on its own loop in a thread: sync fixtures may call it anywhere."""

    async def go() -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, go()).result()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"capmon_test_{uuid.uuid4().hex[:12]}"
    _admin_sql(pg_admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(pg_admin_url, name)


def _drop_database(admin_url: str, name: str) -> None:
    # FORCE must signal whatever is connected, autovacuum workers included (deploy/postgres
    # grants pg_signal_backend for that); a worker arriving mid-drop is retried, not a failure.
    for attempt in range(5):
        try:
            _admin_sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except sa.exc.DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'capmon.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A migrated store, on SQLite and on PostgreSQL (the same tests run on both)."""
    s = Store(store_url)
    await s.upgrade()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, unique: Callable[[str], str]) -> KafkaSettings:
    # Short sessions so group takeovers happen in seconds, not the production default.
    return KafkaSettings(bootstrap=kafka_bootstrap, client_id=unique("capmon-test"),
                         session_timeout_ms=6000, heartbeat_interval_ms=1000,
                         commit_interval_s=0.05)


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """The bus contract runs against the embedded bus and a real Kafka broker."""
    b: Bus
    if request.param == "memory":
        b = MemoryBus()
    else:
        from monitor.bus.kafka import KafkaBus

        b = KafkaBus(request.getfixturevalue("kafka_settings"))
    await b.start()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
def new_topic(bus: Bus, unique: Callable[[str], str]) -> Callable[[int], object]:
    """Create a unique topic with n partitions on the test's bus: `await new_topic(3)`."""

    async def make(partitions: int = 3) -> str:
        name = unique("capmon.test")
        await bus.ensure_topics([TopicSpec(name, partitions, 3_600_000, "delete")])
        return name

    return make


@pytest.fixture
def now() -> Iterator[datetime]:
    yield datetime(2022, 9, 6, 17, 26, tzinfo=UTC)
