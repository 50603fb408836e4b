"""The chaos suite's own Kafka broker and PostgreSQL, started once for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.services import ChaosServices


@pytest.fixture(scope="session")
def chaos_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosServices]:
    # Under /var/tmp: the postgres user must reach the data directory (/root is private).
    run = tmp_path_factory.getbasetemp().name
    services = ChaosServices(Path("/var/tmp") / f"capmon-chaos-{run}")
    services.home.mkdir(parents=True, exist_ok=True)
    services.start()
    try:
        yield services
    finally:
        services.stop()

