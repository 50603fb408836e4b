"""deploy/kafka and deploy/postgres as a new user runs them: from a checkout in a private
directory (root's home is 0700), and next to a broker that is somebody else's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script(path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


def test_kafka_start_does_not_take_another_broker_for_its_own(tmp_path: Path) -> None:
    with socket.socket() as other:  # whatever answers on the port is not our broker
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        run = subprocess.run([str(ROOT / "deploy" / "kafka" / "start")], capture_output=True,
                             text=True, timeout=60, check=False,
                             env={**os.environ, "KAFKA_PORT": str(port),
                                  "KAFKA_HOME": str(tmp_path / "kafka")})
    assert run.returncode == 1
    assert f"port {port} is already in use by another process" in run.stderr
    assert run.stdout == ""  # no bootstrap address for callers to use
    assert not (tmp_path / "kafka" / "kafka.pid").exists()


async def test_postgres_starts_from_a_checkout_in_a_private_directory(tmp_path: Path) -> None:
    private = tmp_path / "root-home"
    scripts = private / "checkout" / "deploy" / "postgres"
    scripts.mkdir(parents=True)
    for name in ("start", "stop", "common.sh"):
        shutil.copy2(ROOT / "deploy" / "postgres" / name, scripts / name)
    private.chmod(0o700)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PG_HOME"}
    env["PG_PORT"] = str(port)
    start = script(scripts / "start", env)
    where = next(line.removeprefix("postgres data in ") for line in start.stderr.splitlines()
                 if line.startswith("postgres data in "))
    try:
        assert start.returncode == 0, start.stderr
        url = start.stdout.strip().splitlines()[-1]
        assert url == f"postgresql+asyncpg://capmon:capmon@127.0.0.1:{port}/capmon"
        if os.geteuid() == 0:  # the server runs as postgres: its data is where it can reach
            assert not Path(where).is_relative_to(private)
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            assert await conn.fetchval("SELECT current_user") == "capmon"
        finally:
            await conn.close()
    finally:
        stop = script(scripts / "stop", env, "--wipe")
        if Path(where).is_relative_to("/var/tmp"):
            shutil.rmtree(where, ignore_errors=True)
    assert stop.returncode == 0 and "postgres stopped" in stop.stderr, stop.stderr
