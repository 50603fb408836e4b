"""Tables decide keeps in memory (subscriptions, silences, escalation policies) and how it
knows to reload them: a cheap fingerprint of each table, and a count of this process's own
writes to it.

The count makes a write in decide's own process (`capmon run`) visible at once; the
fingerprint (row count, latest `updated_at`, largest id) is what another process's write
changes, so decide notices it on its next refresh (`decide.refresh_s`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


class Watched:
    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.local_changes = 0

    def changed(self) -> None:
        """Called by the table's owner on every write."""
        self.local_changes += 1

    async def version(self, conn: AsyncConnection) -> tuple[int, str]:
        c = self.table.c
        row = (await conn.execute(sa.select(sa.func.count(), sa.func.max(c.updated_at),
                                            sa.func.max(c.id)))).one()
        return int(row[0]), f"{row[1]}|{row[2]}"
