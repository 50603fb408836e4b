"""The CLI as users run it: `capmon run` on the embedded default, `db upgrade`, `topics create`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from monitor.topics import TOPIC_SPECS

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capmon_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a capmon a test runs: its own store, and every source on a loopback
    port nothing listens on (a test never reaches caiso.com or sce.com)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
    nowhere = f"http://127.0.0.1:{free_port()}"
    env.update(CAPMON_STORE_URL=f"sqlite+aiosqlite:///{tmp_path / 'capmon.db'}",
               CAPMON_LOG_FORMAT="json", PYTHONPATH=str(REPO),
               CAPMON_SOURCES_CAISO_OUTLOOK_URL=f"{nowhere}/outlook",
               CAPMON_SOURCES_CAISO_FLEX_URL=f"{nowhere}/flex",
               CAPMON_SOURCES_CAISO_OASIS_URL=f"{nowhere}/oasisapi/SingleZip",
               CAPMON_SOURCES_SCE_API_URL=f"{nowhere}/sce/api",
               CAPMON_SOURCES_SCE_HTML_URL=f"{nowhere}/sce/html", **extra)
    return env


async def readyz(port: int, until: Callable[[int, dict[str, Any]], bool]
                 ) -> tuple[int, dict[str, Any]]:
    """/readyz of a capmon starting up, polled until `until(status, body)` (30 s at most)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    status, body = resp.status, await resp.json()
                if until(status, body):
                    return status, body
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("capmon never answered as expected")


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return err.decode()


async def test_a_blind_capmon_is_degraded_and_a_restart_does_not_make_it_ready(
        tmp_path: Path) -> None:
    """`capmon run --port P` with no route to its sources, then restarted on the same store
    with a grace so long that only the stored blindness can make it degraded."""
    port = free_port()
    env = capmon_env(tmp_path, CAPMON_SOURCES_BLIND_AFTER_S="0")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "run", "--port", str(port), cwd=tmp_path,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        status, body = await readyz(port, lambda _s, b: len(
            b["checks"]["sources"].get("stale", [])) == 6)
    finally:
        await stop(proc)
    assert status == 503 and body["status"] == "degraded"
    whys = [s["why"] for s in body["checks"]["sources"]["sources"]]
    assert len(whys) == 6 and all(w.endswith("refused the connection") for w in whys), whys

    env["CAPMON_SOURCES_BLIND_AFTER_S"] = "3600"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "run", "--port", str(port), cwd=tmp_path,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        status, body = await readyz(port, lambda _s, _b: True)
    finally:
        await stop(proc)
    assert status == 503 and body["status"] == "degraded"
    assert len(body["checks"]["sources"]["stale"]) == 6


async def test_capmon_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "run", cwd=tmp_path,
        env=capmon_env(tmp_path, CAPMON_API_PORT=str(port)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        ready = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("capmon run never listened")
            assert ready["checks"]["bus"]["ok"] and ready["checks"]["store"]["ok"]
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert "capmon_source_polls_total" in await resp.text()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    events = [json.loads(line)["event"] for line in err.decode().splitlines()
              if line.startswith("{")]
    assert events[-1] == "capmon_stopped"
    assert (tmp_path / "capmon.db").exists()


async def test_db_upgrade_and_current(tmp_path: Path) -> None:
    env = capmon_env(tmp_path)
    up = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "db", "upgrade", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await up.communicate()
    assert up.returncode == 0, err.decode()
    cur = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "db", "current", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out2, _ = await cur.communicate()
    assert cur.returncode == 0  # 0 means: at every head
    assert out2.decode().strip() and out2.decode().strip() in out.decode()


async def test_topics_create_sets_partitions_and_retention(
        tmp_path: Path, kafka_bootstrap: str, unique: Callable[[str], str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "topics", "create", "--bootstrap", kafka_bootstrap,
        env=capmon_env(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id=unique("t"))
    await admin.start()
    try:
        meta = await admin.describe_topics([s.name for s in TOPIC_SPECS])
        partitions = {t["topic"]: len(t["partitions"]) for t in meta}
        assert partitions == {s.name: s.partitions for s in TOPIC_SPECS}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in TOPIC_SPECS])
        seen = {}
        for response in configs:
            for resource in response.resources:
                entries = {c[0]: c[1] for c in resource[4]}
                seen[resource[3]] = (entries["retention.ms"], entries["cleanup.policy"])
        assert seen == {s.name: (str(s.retention_ms), s.cleanup_policy) for s in TOPIC_SPECS}
    finally:
        await admin.close()
