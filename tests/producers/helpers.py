"""Small helpers shared by the producer tests."""

from __future__ import annotations

import uuid
from pathlib import Path

from monitor.bus import Bus
from monitor.envelope import condition_from_event
from monitor.events import Condition

CAISO_FIXTURES = Path(__file__).parent.parent / "fixtures" / "caiso"


async def drain(bus: Bus, topic: str, timeout: float = 0.05) -> list[Condition]:
    """Every condition on `topic` so far, in publish order per key (a fresh group)."""
    sub = bus.subscribe([topic], group=f"drain-{uuid.uuid4().hex}")
    out = []
    while (msg := await sub.get(timeout=timeout)) is not None:
        out.append(condition_from_event(msg.event()))
    await sub.close()
    return out
