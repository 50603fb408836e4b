"""A production install leaves the `demo` extra out (aiosmtpd, rich): every module but the
demo's sinks imports without it, the command line works, and `capmon demo` says in one line
which extra it needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLEX = ROOT / "tests/fixtures/caiso/flexalert/inactive_2026-04-21.json"

# Runs in a fresh interpreter: a finder ahead of every other refuses the extra's packages, as
# if they were not installed, then every module of the four packages is imported.
CHILD = r'''
import contextlib, importlib, importlib.abc, io, json, sys
from pathlib import Path

class WithoutExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("aiosmtpd", "rich"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutExtra())
root = Path.cwd()
failed, imported = {}, []
for package in ("capmon", "monitor", "consumers", "producers"):
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__main__" or "migrations" in parts:
            continue  # a script, and Alembic's (they run when imported)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        try:
            importlib.import_module(name)
            imported.append(name)
        except ModuleNotFoundError as exc:
            failed[name] = exc.name

from capmon.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
    demo = main(["demo", "--out", sys.argv[1], "--quiet"])
    parse = main(["parse", "caiso-flex", sys.argv[2]])
print(json.dumps({"failed": failed, "imported": imported, "demo": demo, "parse": parse,
                  "stderr": err.getvalue(), "stdout": out.getvalue()}))
'''


def test_everything_but_the_demo_runs_without_the_demo_extra(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "out"), str(FLEX)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(run.stdout)
    # Only the demo's own modules need the extra, and the finder did refuse it.
    assert set(got["failed"]) == {"capmon.demo.run", "capmon.demo.sinks",
                                  "capmon.demo.timeline"}
    assert set(got["failed"].values()) <= {"aiosmtpd.smtp", "rich.console", "aiosmtpd", "rich"}
    assert {"capmon.roles", "capmon.api", "capmon.cli", "producers.runner",
            "consumers.decide.decider", "consumers.deliver.deliverer", "capmon.replay",
            "capmon.demo.twilio_standin"} \
        <= set(got["imported"])
    assert got["demo"] == 2 and not (tmp_path / "out").exists()
    [line] = got["stderr"].splitlines()
    assert "capmon[demo]" in line and line.startswith("capmon demo: needs the demo extra")
    assert got["parse"] == 0
