"""SQLite statements in one round trip to aiosqlite's thread, with what SQLAlchemy reads back
(rows, rowcount, lastrowid, errors) as the stock adapter gives it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa

from monitor.errors import StoreConflict
from monitor.store import Store

_T = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
              sa.Column("name", sa.String, nullable=False, unique=True))


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(f"sqlite+aiosqlite:///{tmp_path / 'trip.db'}")
    async with s.begin() as conn:
        await conn.execute(sa.text(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kw: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kw)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_a_statement_is_one_trip_to_the_thread(sqlite: Store, trips: list[str]) -> None:
    async with sqlite.begin() as conn:
        trips.clear()
        await conn.execute(_T.insert().values(name="a"))
        await conn.execute(_T.insert(), [{"name": "b"}, {"name": "c"}])
        rows = (await conn.execute(sa.select(_T.c.name).order_by(_T.c.id))).all()
        assert trips == ["_run", "_run", "_run"]
    assert [r[0] for r in rows] == ["a", "b", "c"]


async def test_rowcount_lastrowid_returning_and_empty_results(sqlite: Store) -> None:
    async with sqlite.begin() as conn:
        first = await conn.execute(_T.insert().values(name="a"))
        assert first.inserted_primary_key == (1,)  # from the cursor's lastrowid
        await conn.execute(_T.insert(), [{"name": n} for n in "bcd"])
        changed = await conn.execute(_T.update().where(_T.c.id > 2).values(name=_T.c.name + "!"))
        assert changed.rowcount == 2
        back = await conn.execute(_T.delete().where(_T.c.name == "d!").returning(_T.c.id))
        assert back.all() == [(4,)]
        assert (await conn.execute(sa.select(_T.c.id).where(_T.c.id > 99))).first() is None
        assert (await conn.execute(sa.select(sa.func.count()).select_from(_T))).scalar() == 3


async def test_errors_arrive_translated_and_the_transaction_rolls_back(sqlite: Store) -> None:
    with pytest.raises(StoreConflict):
        async with sqlite.begin() as conn:
            await conn.execute(_T.insert().values(name="x"))
            await conn.execute(_T.insert().values(name="x"))
    async with sqlite.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(_T))).scalar() == 0


async def test_streamed_results_keep_fetching_in_steps(sqlite: Store) -> None:
    async with sqlite.begin() as conn:
        await conn.execute(_T.insert(), [{"name": f"n{i}"} for i in range(250)])
    async with sqlite.connect() as conn:
        result = await conn.stream(sa.select(_T.c.id).order_by(_T.c.id))
        got = [r[0] async for r in result]
    assert got == list(range(1, 251))
