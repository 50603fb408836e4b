"""The store: an async SQLAlchemy engine over SQLite (default) or PostgreSQL, plus migrations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from monitor.errors import StoreConflict, StoreError
from monitor.store.sqlite_driver import one_trip_dbapi

MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


class Store:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # JSON columns hold whole notifications and conditions; a fan-out writes thousands in
        # one statement, and the standard library's encoder was most of its cost.
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": _json_dumps,
                                  "json_deserializer": orjson.loads}
        if self.is_sqlite:
            kwargs["module"] = one_trip_dbapi()
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._writer = asyncio.Lock()
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: `async with store.begin() as conn: ...`. Whatever the database or
        its driver raises out of it arrives as a `StoreError` (see `store_errors`)."""
        with store_errors():
            if self.is_sqlite:
                # SQLite has one writer. Two of this process's transactions racing for it
                # would meet in SQLite's busy handler, which sleeps and polls (tens of ms a
                # time under load); queueing them here instead hands the lock over at once.
                async with self._writer, self.engine.begin() as conn:
                    yield conn
            else:
                async with self.engine.begin() as conn:
                    yield conn

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads, errors translated as `begin`'s."""
        with store_errors():
            async with self.engine.connect() as conn:
                yield conn

    async def upgrade(self, target: str = "heads") -> None:
        """Apply migrations up to `target` (every head by default)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), target))

    async def current_revisions(self) -> set[str]:
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current)

    async def pending_migrations(self) -> bool:
        heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
        return await self.current_revisions() != heads

    async def ping(self) -> None:
        async with self.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """The one place database failures become capmon's: a refused or dropped connection,
    an exhausted pool, a locked SQLite file or a server restarting are `StoreError`s a retry
    may cure (`retriable`); a constraint that refuses a row is a `StoreConflict`, which
    retrying the same write cannot cure. A refused new connection reaches us as a bare
    `OSError` from the driver, not as a SQLAlchemy error, hence both."""
    try:
        yield
    except IntegrityError as exc:
        raise StoreConflict(f"store refused the write: {_first_line(exc.orig or exc)}",
                            reason="conflict") from exc
    except (SQLAlchemyError, OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"store unavailable: {type(exc).__name__}: {_first_line(exc)}",
                         reason="unavailable", retriable=True) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def _current(conn: sa.Connection) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    return set(MigrationContext.configure(conn).get_current_heads())


def in_chunks(values: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """`values` without repeats, in lists short enough for one `IN (...)` each (SQLite and
    asyncpg both cap a statement's parameters)."""
    unique = list(dict.fromkeys(values))
    for i in range(0, len(unique), size):
        yield unique[i:i + size]


def unindexed(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """`condition` as a filter no index can serve, beside `key IN (...)`: the statement then
    finds its rows by their keys. Bare, SQLite's planner (it keeps no statistics) reckons an
    OR over the `state` index cheaper than a few hundred keys, and then reads every row in
    those states for each slice of a fan-out's keys: the fan-out costs the square of its size."""
    return sa.func.coalesce(condition, sa.false())


def insert_ignore(conn: AsyncConnection, table: sa.Table,
                  index_elements: Sequence[str] | None = None) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the connection's dialect: one statement, no
    savepoint, for hot paths that may see a row again (redelivered revisions, re-admitted
    notification keys, a second opt-out of one address)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=index_elements)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=index_elements)


class EncodedJSON:
    """A JSON column's value, or a part of one, that is JSON text already: written as it is,
    not decoded and encoded again. A whole value is handed to the driver as this very text,
    so a fan-out's thousands of payloads are not held twice. (Not a dataclass: orjson would
    encode one as an object of its fields instead of asking `_splice`.)"""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def encoded_json(data: bytes) -> EncodedJSON:
    return EncodedJSON(data.decode("utf-8"))


def as_json(value: Any) -> EncodedJSON:
    """`value` encoded now, for rows that share it."""
    return EncodedJSON(_json_dumps(value))


def _json_dumps(value: Any) -> str:
    if isinstance(value, EncodedJSON):
        return value.text
    return orjson.dumps(value, default=_splice, option=orjson.OPT_NON_STR_KEYS).decode()


def _splice(value: Any) -> orjson.Fragment:
    if isinstance(value, EncodedJSON):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while decide writes; a busy timeout instead of "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database and survives a process crash; only a
    # power loss can roll back the last commits (SQLite's recommended WAL setting). FULL
    # fsyncs every commit, which is most of a single-host deployment's store time.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


__all__ = ["AsyncConnection", "Store"]
