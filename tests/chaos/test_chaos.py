"""The bounded chaos run (`make chaos`): each fault once, on the suite's own broker and
database, with decide and deliver (and produce, for its own kill) as separate processes.
Nothing may be lost; a duplicate is allowed only as the same webhook-id again (a send whose
fate was unknown at the fault).
`bench/chaos.py --trials 20` runs the long version and prints the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import run_trial
from tests.chaos.services import ChaosServices

pytestmark = pytest.mark.chaos

CI_SCENARIOS = ["kill -9 decide", "kill -9 deliver", "kill -9 decide and deliver",
                "kill -9 produce between fetch and publish", "PostgreSQL stopped 20 s",
                "broker stopped 20 s", "two deliver processes"]


@pytest.mark.timeout(420)
@pytest.mark.parametrize("scenario", CI_SCENARIOS)
async def test_nothing_lost(chaos_services: ChaosServices, tmp_path: Path,
                            scenario: str) -> None:
    out = await run_trial(chaos_services, tmp_path, scenario)
    logs = "\n".join(f"--- {name}\n{text}" for name, text in out.logs.items())
    assert out.lost == 0, f"{scenario}: {out.lost} of {out.expected} items lost\n{logs}"
    assert out.duplicates_other == 0, (
        f"{scenario}: {out.duplicates_other} items sent again under a new webhook-id\n{logs}")
    assert out.unverified == 0, f"{scenario}: {out.unverified} webhooks failed verification"
