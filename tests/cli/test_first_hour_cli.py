"""What a new user types in the first hour: one-line errors instead of tracebacks, --version,
`| head`, lists in the environment without JSON, links that follow the API's port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from capmon.cli import main
from monitor.config import load_settings

REPO = Path(__file__).resolve().parents[2]
HISTORY = REPO / "tests" / "fixtures" / "sce" / "history" / "api_bip_sdp_history_1998-2011.csv"


def capmon(*argv: str, env: dict[str, str] | None = None,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
    return subprocess.run([sys.executable, "-m", "capmon.cli", *argv], cwd=REPO,
                          env={**clean, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=60, input=stdin,
                          check=False)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "capmon 0.1.0"


def test_parse_into_head_stops_quietly() -> None:
    run = subprocess.run(
        f"{sys.executable} -m capmon.cli parse sce-history {HISTORY} | head -n 2",
        shell=True, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert len(run.stdout.splitlines()) == 2
    assert run.stderr == ""  # no BrokenPipeError traceback


@pytest.mark.parametrize(("env", "message"), [
    ({"CAPMON_SOURCES_INTERVALS": "caiso-oasis:3600"},
     "capmon: invalid configuration: error parsing value for field \"sources\""),
    ({"CAPMON_WEBHOOK_ALLOW_HOSTS": "[127.0.0.1"},
     "capmon: invalid configuration: webhook.allow_hosts: Value error, not a JSON list"),
    ({"CAPMON_WEBHOK_ALLOW_HOSTS": "127.0.0.1"},
     "capmon: unknown configuration variable(s): CAPMON_WEBHOK_ALLOW_HOSTS"),
])
def test_a_bad_setting_is_one_line(env: dict[str, str], message: str) -> None:
    run = capmon("config", "check", env=env)
    assert run.returncode == 2
    assert run.stderr.startswith(message) and len(run.stderr.splitlines()) == 1, run.stderr


def test_a_toml_syntax_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "capmon.toml"
    bad.write_text('[webhook]\nallow_hosts = ["127.0.0.1"\n')
    run = capmon("--config", str(bad), "config", "check")
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"capmon: config file {bad} is not valid TOML:")


def test_lists_in_the_environment_may_be_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPMON_WEBHOOK_ALLOW_HOSTS", "127.0.0.1, localhost")
    monkeypatch.setenv("CAPMON_SOURCES_ENABLED", "sce-dr")
    s = load_settings()
    assert s.webhook.allow_hosts == ("127.0.0.1", "localhost")
    assert s.sources.enabled == ("sce-dr",)
    monkeypatch.setenv("CAPMON_WEBHOOK_ALLOW_HOSTS", '["127.0.0.1"]')
    assert load_settings().webhook.allow_hosts == ("127.0.0.1",)


def test_links_follow_the_api_port_unless_a_public_url_is_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().api.public_url == "http://127.0.0.1:8080"
    monkeypatch.setenv("CAPMON_API_PORT", "9090")
    assert load_settings().api.public_url == "http://127.0.0.1:9090"
    # `capmon run --port 7001` is this override (capmon/cli/roles.py).
    assert load_settings(api={"port": 7001}).api.public_url == "http://127.0.0.1:7001"
    monkeypatch.setenv("CAPMON_API_HOST", "0.0.0.0")
    assert load_settings().api.public_url == "http://127.0.0.1:9090"
    monkeypatch.setenv("CAPMON_API_PUBLIC_URL", "https://capmon.cpa.example")
    assert load_settings(api={"port": 7001}).api.public_url == "https://capmon.cpa.example"


def test_run_and_api_take_host_and_port() -> None:
    for role in ("run", "api"):
        helptext = capmon(role, "--help").stdout
        assert "--host" in helptext and "--port" in helptext
