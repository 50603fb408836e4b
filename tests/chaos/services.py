"""A Kafka broker and a PostgreSQL server of the chaos suite's own, on ports of their own, so
a scenario can stop, kill and restart them without touching the services other tests share.
Both are started with the repository's deploy/ scripts (the broker's jars are the ones
`deploy/services up` downloaded)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"


def _run(script: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(DEPLOY / script), *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@dataclass
class ChaosServices:
    home: Path
    kafka_port: int = 19092
    pg_port: int = 55532

    @property
    def kafka_env(self) -> dict[str, str]:
        return {"KAFKA_HOME": str(self.home / "kafka"), "KAFKA_PORT": str(self.kafka_port),
                "KAFKA_HEAP": "384m"}

    @property
    def pg_env(self) -> dict[str, str]:
        return {"PG_HOME": str(self.home / "postgres"), "PG_PORT": str(self.pg_port)}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def pg_admin_url(self) -> str:
        return f"postgresql+asyncpg://capmon:capmon@127.0.0.1:{self.pg_port}/capmon"

    def start_kafka(self) -> None:
        lib = self.home / "kafka" / "lib"
        shared = ROOT / ".cache" / "kafka" / "lib"
        if not lib.exists() and (shared / ".complete").exists():
            lib.parent.mkdir(parents=True, exist_ok=True)
            lib.symlink_to(shared)
        _run("kafka/start", self.kafka_env)

    def stop_kafka(self) -> None:
        _run("kafka/stop", self.kafka_env)

    def start_postgres(self) -> None:
        (self.home / "postgres").mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o755)
        _run("postgres/start", self.pg_env)

    def stop_postgres(self, *, immediate: bool = False) -> None:
        if not immediate:
            _run("postgres/stop", self.pg_env)
            return
        data = self.home / "postgres" / "data"
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        cmd = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, capture_output=True, timeout=60, check=True)

    def start(self) -> None:
        self.start_kafka()
        self.start_postgres()

    def stop(self) -> None:
        errors = []
        for stop in (self.stop_kafka, self.stop_postgres):
            try:
                stop()
            except (RuntimeError, subprocess.SubprocessError) as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))
