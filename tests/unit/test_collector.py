"""`settle_after_start`: what a started capmon process holds leaves the collector's sight, and
young collections come rarely. Run in a child so this test process keeps its own settings."""

from __future__ import annotations

import json
import subprocess
import sys

from monitor.collector import OLDER, YOUNG

CHILD = """
import gc, json
from monitor.collector import settle_after_start
held = [{"n": i} for i in range(1000)]  # built at start, kept for the process's life
before = (gc.get_threshold(), gc.get_freeze_count())
settle_after_start()
print(json.dumps({"before": before, "threshold": gc.get_threshold(),
                  "frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}))
"""


def test_start_up_objects_are_frozen_and_young_collections_are_rare() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True)
    got = json.loads(out.stdout)
    assert got["before"][0][0] == 700 and got["before"][1] == 0  # the interpreter's defaults
    assert got["threshold"] == [YOUNG, OLDER, OLDER]
    # Everything alive then, the 1,000 dicts included, is in the permanent generation, and
    # the generations a collection walks are left nearly empty.
    assert got["frozen"] > 1000
    assert got["tracked"] < 100
