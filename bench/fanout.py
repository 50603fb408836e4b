"""Fan-out benchmark: one EEA 3 to N webhook subscribers, capmon against Prometheus Alertmanager.

N webhook subscriptions (kinds `caiso.eea`) and one CAISO EEA 3 condition published on
`capmon.caiso.v1`: how long from the publish to the first and to the N-th webhook at a
receiver that runs in its own process. Four systems, in one run, against the same receiver:

- **embedded**: decide and deliver in one child process (`open_runtime` + the `ROLES` entry
  points) on the embedded bus with SQLite in a temporary directory; the child publishes the
  condition on its in-process bus when the bench tells it to.
- **kafka**: `capmon decide` and `capmon deliver` as separate processes on the real Kafka
  broker and a fresh PostgreSQL database; the bench publishes with capmon's Kafka bus.
- **alertmanager**: Prometheus Alertmanager 0.25 (Debian's `prometheus-alertmanager`,
  installed with apt-get when missing and running as root) with N receivers of one
  webhook_config each and a route tree that fans every alert out to all of them; the bench
  posts one alert to `/api/v2/alerts`.
- **bare**: the floor for any one Python process: a bare aiohttp client in a child process
  that, told of an alert, builds and signs the N webhooks capmon would send (the same
  CloudEvent bodies and Standard Webhooks headers), takes the publish time, and only then
  posts them, 64 at a time on 64 kept-alive connections (capmon's webhook notifier keeps
  32 per host). No decide, no ledger, no bus: what is left is the HTTP client and the
  receiver.

For every system and size there is first one warm-up alert (its webhooks are counted apart
and left out), then one measured alert. For N = 1 the single-subscriber latency is measured
over `--alerts` separate alerts (new condition ids, one after another, each waiting for its
webhook): p50 and p99. For N > 1 the p50/p99 columns are the spread of the N webhooks of the
measured alert. Peak RSS is each capmon (or Alertmanager) process's VmHWM, read just before it
is stopped (the JSON also has each process's CPU seconds). Duplicates are requests that repeat
a webhook-id (for Alertmanager, which sends no id, a receiver path) already seen for that
alert. An alert that does not reach all N within `--timeout` is reported with how many it
reached; a system whose warm-up alert does not finish is not measured at that size.

    python bench/fanout.py [--sizes 1,1000,10000] [--alerts 200] [--timeout 180]
    python bench/fanout.py --quick                   # sizes 1,100 and 20 alerts
    python bench/fanout.py --systems embedded,alertmanager --keep   # keep logs, rounds.jsonl

Needs the services env for the Kafka system (`source .cache/services.env`: CAPMON_TEST_KAFKA
and CAPMON_TEST_PG_URL; `--systems embedded,alertmanager` runs without them). Each size gets
its own SQLite file or PostgreSQL database (created, then dropped). On the shared broker the
consumer groups of decide and deliver are moved to the end of their topics before the roles
start, so earlier runs' records are never read, and every alert carries a tag unique to this
run that the receiver counts by. Prints a table, then one JSON object with every figure and
the ratios of capmon's figures to Alertmanager's as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capmon.roles import ROLES
from consumers.notifiers.webhook import signed_headers, webhook_body
from monitor.attributes import NoticeAttributes
from monitor.bus import Bus, make_bus
from monitor.collector import settle_after_start
from monitor.config import (
    KafkaSettings,
    LogSettings,
    Settings,
    StoreSettings,
    WebhookSettings,
)
from monitor.envelope import condition_event
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.logging import configure_logging
from monitor.notifications import (
    Notification,
    NotificationItem,
    Transition,
    WebhookChannel,
    notification_key,
)
from monitor.runtime import close_runtime, open_runtime
from monitor.store import Store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.subscriptions import SubscriptionSpec, new_webhook_secret
from monitor.topics import CAISO, CONDITION_TOPICS, NOTIFICATIONS, TOPIC_SPECS

REPO = Path(__file__).resolve().parents[1]
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
# decide's consumer group has no setting (consumers/decide/decider.py GROUP); deliver's default one.
DECIDE_GROUP = "capmon-decide"
DELIVER_GROUP = "capmon-deliver"
SOURCE = "/bench/fanout"
# Every alert of a run carries a tag like `fanout-1a2b3c4d-r7` (in the condition id, in an
# Alertmanager label); the receiver files each request under the tag it finds in the body.
TAG_RE = re.compile(rb"fanout-[0-9a-f]{8}-r\d+")
# Protocol lines between the bench and its children start with this; anything else a child
# prints on stdout is ignored.
MARK = "FANOUT "
SINGLE_TIMEOUT_S = 30.0  # one single-subscriber alert
START_TIMEOUT_S = 90.0   # a process becoming ready
STOP_TIMEOUT_S = 45.0    # a process draining after SIGTERM (run_roles allows roles 30 s)


def log(message: str) -> None:
    """Progress goes to stderr: stdout is the table and the JSON line only."""
    print(f"[fanout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM, the process's peak resident set so far (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far (None once it is gone)."""
    try:
        # The command name (field 2) may hold spaces; the fields after it are plain.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def eea3_condition(tag: str, now: datetime) -> Condition:
    """A CAISO EEA 3 notice as the notice producer files it (cf. tests/deliver/helpers.py
    eea3): critical, step 2, the whole grid, active since 9 minutes ago and for 3 hours more.
    The window is around the real clock, which the roles run on."""
    return Condition(
        id=f"caiso.notice:{tag}", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
        status=Status.ACTIVE,
        window=Window(start=now - timedelta(minutes=9), end=now + timedelta(hours=3)),
        regions=("CAISO Grid",),
        attributes=NoticeAttributes(
            notice_no=tag, level="3", step=2, title=f"CAISO EEA 3 NOTICE [{tag}]",
            reason="Load and resource deficiencies; rotating outages may be ordered.",
            issued_at=now - timedelta(minutes=9), channel="email"),
        revision=revision_at(now), observed_at=now, source_url=f"imap://notices/{tag}")


def child_env(**extra: str) -> dict[str, str]:
    """The bench's environment without CAPMON_* (capmon rejects unknown ones, and the
    caller's own settings must not leak in), plus the worktree on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def read_reply(stream: asyncio.StreamReader, timeout: float) -> dict[str, Any]:
    async def next_marked() -> dict[str, Any]:
        while True:
            line = await stream.readline()
            if not line:
                raise RuntimeError("child process closed its stdout")
            text = line.decode(errors="replace")
            if text.startswith(MARK):
                reply: dict[str, Any] = json.loads(text[len(MARK):])
                return reply

    return await asyncio.wait_for(next_marked(), timeout)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = STOP_TIMEOUT_S
                       ) -> None:
    """SIGTERM (capmon drains and exits), then SIGKILL if it does not stop in time."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        log(f"pid {proc.pid} did not stop within {timeout:.0f} s: killed")
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# -- the receiver (its own process) -----------------------------------------------------------


@dataclass
class Tally:
    """What one alert (one tag) brought to the receiver."""

    requests: int = 0
    ids: set[str] = field(default_factory=set)
    first_at: dict[str, float] = field(default_factory=dict)  # receiver path -> first arrival
    waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)


def receiver_main(port: int) -> None:
    # Alertmanager opens one connection per receiver at once: 10,000 sockets.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tallies: dict[str, Tally] = {}
    untagged = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal untagged
        body = await request.read()
        at = time.time()  # wall clock: the bench takes its publish time with time.time() too
        found = TAG_RE.search(body)
        if found is None:
            untagged += 1
            return web.Response(status=200)
        t = tallies.setdefault(found.group().decode(), Tally())
        t.requests += 1
        # capmon's webhook-id is the notification key; Alertmanager sends none, and each of
        # its receivers has a path of its own.
        t.ids.add(request.headers.get("webhook-id") or request.path)
        if request.path not in t.first_at:
            t.first_at[request.path] = at
            reached = len(t.first_at)
            for n, fut in t.waiters:
                if reached >= n and not fut.done():
                    fut.set_result(None)
            t.waiters = [w for w in t.waiters if not w[1].done()]
        return web.Response(status=200)

    async def stats(request: web.Request) -> web.Response:
        """Long poll: answers once `n` distinct paths got the tag's alert, or at `timeout`."""
        tag = request.query["tag"]
        n = int(request.query.get("n", "0"))
        timeout = float(request.query.get("timeout", "0"))
        t = tallies.setdefault(tag, Tally())
        if len(t.first_at) < n and timeout > 0:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            t.waiters.append((n, fut))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout)
        return web.json_response({"requests": t.requests, "ids": len(t.ids),
                                  "times": sorted(t.first_at.values()), "untagged": untagged})

    async def main() -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/stats", stats)
        app.router.add_post("/{tail:.*}", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        # The bench's imports (capmon's modules) make a full collection here take ~100 ms,
        # which stalled every webhook in flight at random, whichever system sent them.
        settle_after_start()
        print(MARK + json.dumps({"ready": True}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass(frozen=True)
class Received:
    """The receiver's view of one alert, `t0` being when it was published."""

    tag: str
    n: int
    t0: float
    requests: int
    ids: int
    times: tuple[float, ...]

    @property
    def reached(self) -> int:
        return len(self.times)

    @property
    def complete(self) -> bool:
        return self.reached >= self.n

    @property
    def first_s(self) -> float | None:
        return self.times[0] - self.t0 if self.times else None

    @property
    def last_s(self) -> float | None:
        return self.times[self.n - 1] - self.t0 if self.complete else None

    @property
    def duplicates(self) -> int:
        return self.requests - self.ids

    def latencies(self) -> list[float]:
        return [t - self.t0 for t in self.times[:self.n]]


class Receiver:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "receiver.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        with self.log_path.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--receiver-worker", "--port", str(self.port),
                stdout=asyncio.subprocess.PIPE, stderr=err, env=child_env())
        assert self.proc.stdout is not None
        await read_reply(self.proc.stdout, START_TIMEOUT_S)
        self.http = aiohttp.ClientSession()

    async def wait(self, tag: str, n: int, t0: float, timeout: float) -> Received:
        assert self.http is not None
        async with self.http.get(
                f"{self.base}/stats", params={"tag": tag, "n": str(n), "timeout": str(timeout)},
                timeout=aiohttp.ClientTimeout(total=timeout + 30)) as resp:
            data = await resp.json()
        return Received(tag=tag, n=n, t0=t0, requests=data["requests"], ids=data["ids"],
                        times=tuple(data["times"]))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


# -- the embedded system's child: decide + deliver on the in-process bus -----------------------


async def embedded_worker(store_url: str, log_level: str) -> None:
    settings = Settings(
        store=StoreSettings(url=store_url),
        webhook=WebhookSettings(allow_http=True, allow_hosts=("127.0.0.1",)),
        log=LogSettings.model_validate({"level": log_level, "format": "json"}))
    configure_logging(settings.log.level, settings.log.format)
    roles = {name: ROLES[name] for name in ("decide", "deliver")}
    rt = await open_runtime(settings)
    settle_after_start()  # as `run_roles` does
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(fn(rt, stop)) for fn in roles.values()]
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)

    def reply(**data: Any) -> None:
        print(MARK + json.dumps(data), flush=True)

    reply(ready=True)
    try:
        while line := await commands.readline():
            cmd = json.loads(line)
            if cmd["cmd"] != "publish":
                break
            failed = [t for t in tasks if t.done()]
            if failed:
                reply(error=f"a role stopped: {failed[0].exception()!r}")
                break
            c = eea3_condition(cmd["tag"], datetime.now(UTC))
            event = condition_event(c, SOURCE)
            t0 = time.time()
            await rt.bus.publish(CAISO, c.id, event)
            reply(t0=t0)
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_runtime(rt)
    reply(stopped=True)


async def bare_worker(base: str, n: int, concurrency: int = 64) -> None:
    """The bare client's child: on each `publish`, N webhooks built and signed before the
    publish time is taken, then posted."""
    secret = new_webhook_secret()
    sem = asyncio.Semaphore(concurrency)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), cookie_jar=aiohttp.DummyCookieJar())
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    posting: set[asyncio.Future[list[BaseException | None]]] = set()
    settle_after_start()  # as capmon's processes do: no full collection mid-alert
    print(MARK + json.dumps({"ready": True}), flush=True)

    async def post(url: str, body: bytes, headers: dict[str, str]) -> None:
        async with sem, session.post(url, data=body, headers=headers) as resp:
            await resp.read()

    try:
        while line := await commands.readline():
            cmd = json.loads(line)
            if cmd["cmd"] != "publish":
                break
            now = datetime.now(UTC)
            c = eea3_condition(cmd["tag"], now)
            item = NotificationItem(transition=Transition.ISSUED, condition=c)
            requests = []
            for i in range(n):
                url = f"{base}/capmon/{i}"
                sub = f"bare-{i}"
                note = Notification(
                    key=notification_key(sub, c.id, Transition.ISSUED, {"status": "active"}),
                    tenant_id="bare", subscription_id=sub,
                    subscription_name=f"load-management system {i}",
                    channel=WebhookChannel(url=url), decided_at=now, severity=c.severity,
                    items=(item,), summary=f"CAISO EEA 3 active (notice {cmd['tag']})")
                body = webhook_body(note)
                requests.append((url, body, signed_headers((secret,), note.key,
                                                           int(now.timestamp()), body)))
            t0 = time.time()
            # A post that fails shows as a webhook the receiver never got (an incomplete row).
            task = asyncio.ensure_future(asyncio.gather(*(post(*r) for r in requests),
                                                        return_exceptions=True))
            posting.add(task)
            task.add_done_callback(posting.discard)
            print(MARK + json.dumps({"t0": t0}), flush=True)
    finally:
        await asyncio.gather(*posting, return_exceptions=True)
        await session.close()
        print(MARK + json.dumps({"stopped": True}), flush=True)


# -- the four systems ----------------------------------------------------------------------------


class System(Protocol):
    name: str

    async def start(self) -> None: ...

    async def publish(self, tag: str) -> float:
        """Publish one EEA 3 alert; returns time.time() just before it left."""
        ...

    def pids(self) -> dict[str, int]:
        """The system's own processes by name (their peak RSS and CPU time are reported)."""
        ...

    async def stop(self) -> None: ...


async def create_subscriptions(store_url: str, n: int, base: str) -> float:
    """One tenant and N webhook subscriptions, in one transaction; returns the seconds."""
    started = time.perf_counter()
    store = Store(store_url)
    await store.upgrade()  # before the roles start, so they never migrate concurrently
    now = datetime.now(UTC)
    try:
        async with store.begin() as conn:
            tenant, _ = await tenant_store.create_tenant(
                conn, "Fan-out bench CCA", "power-ops@fanout.example", now)
            for i in range(n):
                spec = SubscriptionSpec.model_validate({
                    "name": f"load-management system {i}",
                    "match": {"kinds": ["caiso.eea"]},
                    "channel": {"type": "webhook", "url": f"{base}/capmon/{i}"}})
                await sub_store.create(conn, tenant.id, spec, now)
    finally:
        await store.close()
    return time.perf_counter() - started


class Embedded:
    name = "embedded"

    def __init__(self, n: int, receiver: Receiver, tmp: Path, log_level: str) -> None:
        self.n, self.receiver, self.log_level = n, receiver, log_level
        self.dir = tmp / f"embedded-{n}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.dir.mkdir()
        url = f"sqlite+aiosqlite:///{self.dir / 'capmon.db'}"
        took = await create_subscriptions(url, self.n, self.receiver.base)
        log(f"embedded: {self.n:,} subscriptions in SQLite in {took:.1f} s")
        await self._spawn("--embedded-worker", "--store-url", url, "--log-level", self.log_level)

    async def _spawn(self, *argv: str) -> None:
        with (self.dir / "worker.log").open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, *argv, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=err, env=child_env())
        assert self.proc.stdout is not None
        try:
            await read_reply(self.proc.stdout, START_TIMEOUT_S)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{self.name} worker did not start ({exc!r}):\n"
                               f"{tail(self.dir / 'worker.log')}") from exc

    async def _command(self, timeout: float, **cmd: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await read_reply(self.proc.stdout, timeout)

    async def publish(self, tag: str) -> float:
        reply = await self._command(SINGLE_TIMEOUT_S, cmd="publish", tag=tag)
        if "error" in reply:
            raise RuntimeError(f"{self.name} worker: {reply['error']}")
        return float(reply["t0"])

    def pids(self) -> dict[str, int]:
        return {"worker": self.proc.pid} if self.proc else {}

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await self._command(STOP_TIMEOUT_S, cmd="stop")
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, RuntimeError, ConnectionError) as exc:
            log(f"{self.name} worker did not stop cleanly ({exc!r}): killed")
        await stop_process(self.proc, 5)


class Bare(Embedded):
    """The bare aiohttp client (`bare_worker`): the same protocol as the embedded child's."""

    name = "bare"

    def __init__(self, n: int, receiver: Receiver, tmp: Path) -> None:
        super().__init__(n, receiver, tmp, "warning")
        self.dir = tmp / f"bare-{n}"

    async def start(self) -> None:
        self.dir.mkdir()
        await self._spawn("--bare-worker", "--base", self.receiver.base,
                          "--subscribers", str(self.n))


async def move_groups_to_end(bootstrap: str, groups: dict[str, Sequence[str]]) -> None:
    """Commit each group's offsets at the end of its topics, so a role that joins the group
    reads only what is published from now on (the topics are shared by every run on this
    broker; with no committed offset the roles would start at the earliest record). The
    broker takes such a commit only while the group has no members: if another decide or
    deliver is in the group, its partitions would mix our records with its own, so the
    commit's failure stops this system's measurement."""
    for group_id, topics in groups.items():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id,
                                    enable_auto_commit=False, client_id="capmon-fanout-bench")
        await consumer.start()
        try:
            parts = await _partitions(bootstrap, topics)
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            try:
                await consumer.commit(ends)
            except KafkaError as exc:
                raise RuntimeError(f"cannot position consumer group {group_id} ({exc!r}): "
                                   "is another decide or deliver using it?") from exc
        finally:
            await consumer.stop()


async def _partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="capmon-fanout-bench")
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    parts = [TopicPartition(t["topic"], p["partition"]) for t in described
             for p in t["partitions"]]
    if {tp.topic for tp in parts} != set(topics):
        raise RuntimeError(f"topics missing on the broker: {sorted(topics)}")
    return parts


class Kafka:
    name = "kafka"

    def __init__(self, n: int, receiver: Receiver, tmp: Path, bootstrap: str, pg_url: str,
                 log_level: str, run_id: str) -> None:
        self.n, self.receiver, self.log_level = n, receiver, log_level
        self.bootstrap, self.pg_url = bootstrap, pg_url
        self.dir = tmp / f"kafka-{n}"
        self.database = f"capmon_fanout_{run_id}_{n}"
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.bus: Bus | None = None
        self.db_created = False

    async def _admin(self, statement: str) -> None:
        engine = create_async_engine(self.pg_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(statement))
        finally:
            await engine.dispose()

    async def start(self) -> None:
        self.dir.mkdir()
        await self._admin(f'CREATE DATABASE "{self.database}"')
        self.db_created = True
        url = sa.make_url(self.pg_url).set(database=self.database).render_as_string(
            hide_password=False)
        took = await create_subscriptions(url, self.n, self.receiver.base)
        log(f"kafka: {self.n:,} subscriptions in PostgreSQL {self.database} in {took:.1f} s")
        self.bus = make_bus(Settings(kafka=KafkaSettings(bootstrap=self.bootstrap,
                                                         client_id="capmon-fanout-bench")))
        await self.bus.start()
        await self.bus.ensure_topics(TOPIC_SPECS)
        await move_groups_to_end(self.bootstrap, {DECIDE_GROUP: CONDITION_TOPICS,
                                                  DELIVER_GROUP: (NOTIFICATIONS,)})
        ports = {}
        for role in ("decide", "deliver"):
            ports[role] = free_port()
            env = child_env(
                CAPMON_KAFKA_BOOTSTRAP=self.bootstrap, CAPMON_STORE_URL=url,
                CAPMON_WEBHOOK_ALLOW_HTTP="true", CAPMON_WEBHOOK_ALLOW_HOSTS='["127.0.0.1"]',
                CAPMON_API_OPS_PORT=str(ports[role]), CAPMON_LOG_FORMAT="json",
                CAPMON_LOG_LEVEL=self.log_level)
            with (self.dir / f"{role}.log").open("wb") as out:
                self.procs[role] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "capmon.cli", role, stdout=out,
                    stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        await asyncio.gather(*(self._ready(role, port) for role, port in ports.items()))

    async def _ready(self, role: str, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.procs[role].returncode is not None:
                    raise RuntimeError(f"capmon {role} exited:\n{tail(self.dir / f'{role}.log')}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"http://127.0.0.1:{port}/readyz",
                                        timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"capmon {role} not ready in {START_TIMEOUT_S:.0f} s")

    async def publish(self, tag: str) -> float:
        assert self.bus is not None
        c = eea3_condition(tag, datetime.now(UTC))
        event = condition_event(c, SOURCE)
        t0 = time.time()
        await self.bus.publish(CAISO, c.id, event)
        return t0

    def pids(self) -> dict[str, int]:
        return {role: p.pid for role, p in self.procs.items()}

    async def stop(self) -> None:
        try:
            await asyncio.gather(*(stop_process(p) for p in self.procs.values()))
            if self.bus is not None:
                await self.bus.close()
        finally:
            if self.db_created:
                await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def alertmanager_config(n: int, base: str) -> dict[str, Any]:
    """N receivers, one webhook each; one child route per receiver, all matching every alert
    and continuing, so each alert goes to all N. group_by all labels: every alert is a group
    of its own, sent after group_wait (0 s), never held behind an earlier one."""
    return {
        "route": {
            "receiver": "blackhole", "group_by": ["..."], "group_wait": "0s",
            "group_interval": "1h", "repeat_interval": "24h",
            "routes": [{"receiver": f"r{i}", "matchers": ['bench="fanout"'], "continue": True}
                       for i in range(n)],
        },
        "receivers": [{"name": "blackhole"}] + [
            {"name": f"r{i}",
             "webhook_configs": [{"url": f"{base}/am/{i}", "send_resolved": False}]}
            for i in range(n)],
    }


def ensure_alertmanager() -> str:
    """The Alertmanager binary, installed from Debian's package if missing (root only)."""
    if Path(ALERTMANAGER).exists():
        return ALERTMANAGER
    if os.geteuid() != 0:
        raise RuntimeError(f"{ALERTMANAGER} is missing; apt-get install prometheus-alertmanager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "prometheus-alertmanager"]
    log("installing prometheus-alertmanager with apt-get")
    if subprocess.run(install, env=env, stdout=sys.stderr, timeout=900).returncode != 0:
        # A fresh image has no package lists yet.
        subprocess.run(["apt-get", "update"], env=env, stdout=sys.stderr, timeout=900,
                       check=True)
        subprocess.run(install, env=env, stdout=sys.stderr, timeout=900, check=True)
    return ALERTMANAGER


def alertmanager_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    found = re.search(r"version (\S+)", out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


class Alertmanager:
    name = "alertmanager"

    def __init__(self, n: int, receiver: Receiver, tmp: Path, binary: str) -> None:
        self.n, self.receiver, self.binary = n, receiver, binary
        self.dir = tmp / f"alertmanager-{n}"
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.dir.mkdir()
        config = self.dir / "alertmanager.yml"
        # JSON is YAML: no YAML emitter needed for 10,000 receivers.
        config.write_text(json.dumps(alertmanager_config(self.n, self.receiver.base)))
        with (self.dir / "alertmanager.log").open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, f"--config.file={config}", f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # empty: no clustering, no gossip wait
                "--log.level=warn", stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        self.http = aiohttp.ClientSession()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"alertmanager exited:\n{tail(self.dir / 'alertmanager.log')}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.get(f"http://127.0.0.1:{self.port}/-/ready",
                                         timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"alertmanager not ready in {START_TIMEOUT_S:.0f} s")

    async def publish(self, tag: str) -> float:
        assert self.http is not None
        now = datetime.now(UTC)
        alert = [{
            "labels": {"alertname": "CaisoEEA3", "bench": "fanout", "severity": "critical",
                       "region": "CAISO Grid", "notice": tag},
            "annotations": {"summary": f"CAISO EEA 3 issued, notice {tag}"},
            "startsAt": (now - timedelta(minutes=9)).isoformat(),
            "endsAt": (now + timedelta(hours=3)).isoformat(),
        }]
        t0 = time.time()
        async with self.http.post(f"http://127.0.0.1:{self.port}/api/v2/alerts", json=alert,
                                  timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"alertmanager refused the alert: {resp.status} "
                                   f"{await resp.text()}")
        return t0

    def pids(self) -> dict[str, int]:
        return {"alertmanager": self.proc.pid} if self.proc else {}

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.proc is not None:
            await stop_process(self.proc, 15)


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Measured:
    system: str
    n: int
    warmup: Received | None = None
    fanout: Received | None = None
    singles: list[Received] = field(default_factory=list)
    rss: dict[str, float | None] = field(default_factory=dict)
    cpu: dict[str, float | None] = field(default_factory=dict)
    note: str = ""

    def snapshot(self, pids: dict[str, int]) -> None:
        """Peak RSS and CPU time so far of each process, taken just before it stops."""
        self.rss = {name: peak_rss_mb(pid) for name, pid in pids.items()}
        self.cpu = {name: cpu_s(pid) for name, pid in pids.items()}

    def percentiles(self) -> tuple[float, float] | None:
        """p50 and p99: over the single alerts for N = 1, over the N webhooks otherwise."""
        if self.n == 1:
            values = [r.first_s for r in self.singles if r.first_s is not None]
        else:
            values = self.fanout.latencies() if self.fanout and self.fanout.complete else []
        if len(values) < 2:
            return None
        q = statistics.quantiles(values, n=100, method="inclusive")
        return q[49], q[98]

    def duplicates(self) -> int:
        rounds = [self.fanout, *self.singles] if self.fanout else list(self.singles)
        return sum(r.duplicates for r in rounds if r is not None)


class Tags:
    def __init__(self, run_id: str) -> None:
        self.run_id, self.seq = run_id, 0

    def next(self) -> str:
        self.seq += 1
        return f"fanout-{self.run_id}-r{self.seq}"


async def one_alert(system: System, receiver: Receiver, tag: str, n: int,
                    timeout: float) -> Received:
    t0 = await system.publish(tag)
    return await receiver.wait(tag, n, t0, max(0.1, t0 + timeout - time.time()))


async def measure(system: System, n: int, receiver: Receiver, tags: Tags,
                  args: argparse.Namespace) -> Measured:
    m = Measured(system.name, n)
    try:
        log(f"{system.name} N={n:,}: starting")
        await system.start()
        warm_tag = tags.next()
        m.warmup = await one_alert(system, receiver, warm_tag, n, args.timeout)
        if not m.warmup.complete:
            m.note = (f"warm-up reached {m.warmup.reached:,}/{n:,} in {args.timeout:.0f} s; "
                      "not measured")
            return m
        log(f"{system.name} N={n:,}: warm-up done in {m.warmup.last_s:.2f} s")
        tag = tags.next()
        m.fanout = await one_alert(system, receiver, tag, n, args.timeout)
        if not m.fanout.complete:
            m.note = f"reached {m.fanout.reached:,}/{n:,} in {args.timeout:.0f} s"
        if n == 1 and m.fanout.complete:
            m.singles.append(m.fanout)
            for _ in range(args.alerts - 1):
                r = await one_alert(system, receiver, tags.next(), 1, SINGLE_TIMEOUT_S)
                if not r.complete:
                    m.note = f"an alert got no webhook in {SINGLE_TIMEOUT_S:.0f} s"
                    break
                m.singles.append(r)
        # A moment for late duplicates, then count every measured alert again.
        await asyncio.sleep(1.0)
        m.fanout = await receiver.wait(tag, n, m.fanout.t0, 0)
        m.singles = [await receiver.wait(r.tag, 1, r.t0, 0) for r in m.singles]
        m.snapshot(system.pids())
    except Exception as exc:  # one system failing must not lose the others' figures
        m.note = f"failed: {type(exc).__name__}: {exc}"
        log(f"{system.name} N={n:,}: {m.note}")
    finally:
        if not m.rss:
            m.snapshot(system.pids())
        try:
            await system.stop()
        except Exception as exc:  # leave the next system a clean machine all the same
            log(f"{system.name} N={n:,}: stopping failed: {type(exc).__name__}: {exc}")
    return m


# -- reporting -----------------------------------------------------------------------------------


def fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def fmt_rss(rss: dict[str, float | None]) -> str:
    parts = [f"{k} {v:.0f} MB" for k, v in rss.items() if v is not None]
    if len(parts) == 1:
        return parts[0].split(" ", 1)[1]
    return " + ".join(parts) if parts else "-"


def figures(results: list[Measured], args: argparse.Namespace,
            am_version: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"sizes": args.sizes, "alerts": args.alerts,
                           "timeout_s": args.timeout, "cpus": os.cpu_count(),
                           "alertmanager_version": am_version}
    for m in results:
        p = f"{m.system}_{m.n}"
        f = m.fanout
        out[f"{p}_first_s"] = _r(f.first_s if f else None)
        out[f"{p}_last_s"] = _r(f.last_s if f else None)
        out[f"{p}_received"] = f.reached if f else (m.warmup.reached if m.warmup else 0)
        out[f"{p}_complete"] = bool(f and f.complete)
        pct = m.percentiles()
        out[f"{p}_p50_s"] = _r(pct[0] if pct else None)
        out[f"{p}_p99_s"] = _r(pct[1] if pct else None)
        if m.n == 1:
            out[f"{p}_alerts"] = len(m.singles)
        out[f"{p}_duplicates"] = m.duplicates()
        out[f"{p}_warmup_last_s"] = _r(m.warmup.last_s if m.warmup else None)
        out[f"{p}_warmup_received"] = m.warmup.reached if m.warmup else 0
        out[f"{p}_warmup_duplicates"] = m.warmup.duplicates if m.warmup else 0
        known = [v for v in m.rss.values() if v is not None]
        out[f"{p}_peak_rss_mb"] = round(sum(known), 1) if known else None
        if len(m.rss) > 1:
            for proc, v in m.rss.items():
                out[f"{p}_{proc}_peak_rss_mb"] = None if v is None else round(v, 1)
        # CPU seconds over the process's whole life: start-up, warm-up and measured alerts.
        for proc, v in m.cpu.items():
            out[f"{p}_{proc}_cpu_s"] = None if v is None else round(v, 2)
        if m.note:
            out[f"{p}_note"] = m.note
    # Against Alertmanager (the bare client's ratio says how far any Python sender can get),
    # and against the bare client (what capmon adds to the HTTP).
    pairs = [(s, "alertmanager", "am") for s in ("embedded", "kafka", "bare")]
    pairs += [(s, "bare", "bare") for s in ("embedded", "kafka")]
    for system, other, short in pairs:
        for n in args.sizes:
            for metric in ("first", "last", "p50", "p99", "peak_rss"):
                unit = "mb" if metric == "peak_rss" else "s"
                mine = out.get(f"{system}_{n}_{metric}_{unit}")
                theirs = out.get(f"{other}_{n}_{metric}_{unit}")
                if mine is not None and theirs:
                    out[f"ratio_{system}_{short}_{n}_{metric}"] = round(mine / theirs, 2)
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def table(results: list[Measured], alerts: int) -> str:
    head = ("system", "N", "first webhook", "N-th webhook", "p50", "p99", "peak RSS",
            "duplicates")
    rows = []
    for m in results:
        f = m.fanout
        pct = m.percentiles()
        last = fmt_s(f.last_s) if f else "-"
        if f and not f.complete:
            last = f"incomplete: {f.reached:,}/{m.n:,}"
        elif f is None and m.warmup is not None:
            last = f"warm-up incomplete: {m.warmup.reached:,}/{m.n:,}"
        rows.append((m.system, f"{m.n:,}", fmt_s(f.first_s if f else None), last,
                     fmt_s(pct[0] if pct else None), fmt_s(pct[1] if pct else None),
                     fmt_rss(m.rss), str(m.duplicates()) if f else "-"))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"p50/p99: N=1 over {alerts} alerts, publish to webhook; N>1 over the N "
                 "webhooks of one alert. Warm-up alerts excluded.")
    lines += [f"note: {m.system} N={m.n:,}: {m.note}" for m in results if m.note]
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------


def dump_rounds(results: list[Measured], path: Path) -> None:
    """Every alert's tag, publish time and receive times, to line up with capmon's logs."""
    with path.open("w") as out:
        for m in results:
            kinds = [("warmup", m.warmup), ("fanout", m.fanout)]
            kinds += [("single", r) for r in m.singles[1:]]  # singles[0] is the fan-out alert
            for kind, r in kinds:
                if r is not None:
                    out.write(json.dumps({"system": m.system, "n": m.n, "kind": kind,
                                          "tag": r.tag, "t0": r.t0, "requests": r.requests,
                                          "times": r.times}) + "\n")


async def run(args: argparse.Namespace, am_binary: str | None) -> list[Measured]:
    configure_logging("error", "json")
    run_id = secrets.token_hex(4)
    tags = Tags(run_id)
    tmp = Path(tempfile.mkdtemp(prefix="capmon-fanout-"))
    receiver = Receiver(tmp)
    results: list[Measured] = []
    try:
        await receiver.start()
        log(f"run {run_id}: receiver on {receiver.base}, work in {tmp}")
        for n in args.sizes:
            systems: list[System] = []
            if "embedded" in args.systems:
                systems.append(Embedded(n, receiver, tmp, args.log_level))
            if "kafka" in args.systems:
                if args.kafka and args.pg_url:
                    systems.append(Kafka(n, receiver, tmp, args.kafka, args.pg_url,
                                         args.log_level, run_id))
                else:
                    results.append(Measured("kafka", n, note="skipped: CAPMON_TEST_KAFKA and "
                                            "CAPMON_TEST_PG_URL are not set"))
            if "bare" in args.systems:
                systems.append(Bare(n, receiver, tmp))
            if "alertmanager" in args.systems:
                if am_binary:
                    systems.append(Alertmanager(n, receiver, tmp, am_binary))
                else:
                    results.append(Measured("alertmanager", n, note="skipped: not installed"))
            for system in systems:
                results.append(await measure(system, n, receiver, tags, args))
    finally:
        await receiver.close()
        if args.keep:
            dump_rounds(results, tmp / "rounds.jsonl")
            log(f"logs and rounds.jsonl (every alert's publish and receive times) kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    order = {"embedded": 0, "kafka": 1, "bare": 2, "alertmanager": 3}
    return sorted(results, key=lambda m: (m.n, order[m.system]))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,10000",
                        help="subscriber counts, comma-separated (default 1,1000,10000)")
    parser.add_argument("--alerts", type=int, default=200,
                        help="single-subscriber alerts for p50/p99 at N=1 (default 200)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds one alert may take to reach all N (default 180)")
    parser.add_argument("--systems", default="embedded,kafka,bare,alertmanager")
    parser.add_argument("--quick", action="store_true", help="sizes 1,100; 20 alerts; 60 s")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"],
                        help="capmon's log level (default info, capmon's own default)")
    parser.add_argument("--kafka", default=os.environ.get("CAPMON_TEST_KAFKA"))
    parser.add_argument("--pg-url", default=os.environ.get("CAPMON_TEST_PG_URL"))
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory: logs, SQLite files, rounds.jsonl")
    # The bench's own children.
    parser.add_argument("--receiver-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--embedded-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--subscribers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.alerts, args.timeout = "1,100", 20, 60.0
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    args.systems = {s.strip() for s in args.systems.split(",")}
    unknown = args.systems - {"embedded", "kafka", "bare", "alertmanager"}
    if unknown or any(n < 1 for n in args.sizes) or args.alerts < 1:
        parser.error(f"bad --systems {sorted(unknown)}, --sizes or --alerts")
    return args


def main() -> int:
    args = parse_args()
    if args.receiver_worker:
        receiver_main(args.port)
        return 0
    if args.embedded_worker:
        asyncio.run(embedded_worker(args.store_url, args.log_level))
        return 0
    if args.bare_worker:
        asyncio.run(bare_worker(args.base, args.subscribers))
        return 0
    am_binary: str | None = None
    am_version: str | None = None
    if "alertmanager" in args.systems:
        try:
            am_binary = ensure_alertmanager()
            am_version = alertmanager_version(am_binary)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            log(f"alertmanager unavailable: {exc}")
    results = asyncio.run(run(args, am_binary))
    print(table(results, args.alerts))
    print(json.dumps(figures(results, args, am_version)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
