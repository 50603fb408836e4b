"""SQLite through aiosqlite in one round trip per statement.

aiosqlite runs each sqlite3 call on its own thread, and SQLAlchemy's adapter makes a call for
every step of a statement: open a cursor, execute, fetch, close. Each is a hand-off to that
thread and back to the event loop, and on a busy two-core host a hand-off costs more than
SQLite's own work: decide's transaction for one revision (a dozen statements) spent most of
its time in them. This adapter does the four steps in one call on the thread, so a statement
is one hand-off; what SQLAlchemy sees (description, rows, rowcount, lastrowid, errors) is
what the stock adapter gives it. `Store` passes it to the engine as the DBAPI module
(`create_async_engine(..., module=one_trip_dbapi())`); the URL stays `sqlite+aiosqlite`.

Server-side cursors (`stream()`) keep the stock cursor: they fetch in steps on purpose.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)


class _Done:
    """What a statement left behind once its rows are fetched and its cursor closed."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self) -> None:
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1


def _run(conn: sqlite3.Connection, operation: str, parameters: Any,
         many: bool) -> tuple[_Done, list[Any] | None]:
    # On aiosqlite's thread: the whole statement, start to finish.
    cur = conn.cursor()
    try:
        if many:
            cur.executemany(operation, parameters)
        elif parameters is None:
            cur.execute(operation)
        else:
            cur.execute(operation, parameters)
        done = _Done()
        done.description = cur.description
        rows = cur.fetchall() if cur.description else None
        done.rowcount, done.lastrowid = cur.rowcount, cur.lastrowid
        return done, rows
    finally:
        cur.close()


async def _one_trip(conn: aiosqlite.Connection, operation: Any, parameters: Any,
                    many: bool) -> tuple[_Done, list[Any] | None]:
    got = await conn._execute(_run, conn._conn, operation, parameters,  # type: ignore[no-untyped-call]
                              many)
    return cast(tuple[_Done, list[Any] | None], got)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    # The sqlite3 cursor is closed on the thread, with its statement.
    _awaitable_cursor_close = False

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Done()  # no thread call: the real cursor lives only inside `_run`

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._trip(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._trip(operation, seq_of_parameters, True)

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> Any:
        async with self._adapt_connection._execute_mutex:
            conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            done, rows = await _one_trip(conn, operation, parameters, many)
            self._cursor = done  # type: ignore[assignment]
            if rows is not None:
                self._rows = collections.deque(rows)
            return done

    def close(self) -> None:
        self._rows.clear()


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class _OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        stock = super().connect(*arg, **kw)
        return _OneTripConnection(self, stock._connection)


def one_trip_dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    return _OneTripDbapi(aiosqlite, sqlite3)
