"""One chaos trial: capmon's decide and deliver as separate processes on the suite's own Kafka
and PostgreSQL, a receiver that verifies every webhook's signature and counts the items it
carries, a burst of EEA notices published on the conditions topic (or read by a `capmon produce`
process from a fake notice feed), one fault injected mid-burst, and what came out: lost items,
duplicates (same webhook-id: a send whose fate was unknown; or not), and how long after the
fault ended the last item arrived.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks import Webhook

from monitor.attributes import NoticeAttributes
from monitor.bus.kafka import KafkaBus
from monitor.clock import PACIFIC, SystemClock
from monitor.config import KafkaSettings
from monitor.envelope import condition_event
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.store import Store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.subscriptions import SubscriptionSpec
from monitor.topics import CAISO, TOPIC_SPECS
from tests.chaos.services import ROOT, ChaosServices
from tests.producers.fake_caiso import FakeCaiso, Hold, Reply

NOTICES = ROOT / "tests" / "fixtures" / "caiso" / "notices" / "heatwave_2022"
_DATE = re.compile(rb"\b(\d{2})/(\d{2})/(\d{4})\b")


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class Receiver:
    """Webhook endpoints /hook/{i}: verify, record, answer 200 (or 503 while failing)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.items: list[tuple[str, str, str]] = []  # (webhook-id, subscription, condition)
        self.unverified = 0
        self.failing_until = 0.0
        self.last_at = 0.0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{sub}", self._hook)
        self._runner, self.port = await _serve(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        if time.monotonic() < self.failing_until:
            return web.Response(status=503)
        sub = request.match_info["sub"]
        body = await request.read()
        try:
            Webhook(self.secrets[sub]).verify(body, dict(request.headers))
        except Exception:  # any refusal by the reference verifier is a bad signature
            self.unverified += 1
            return web.Response(status=401)
        event = json.loads(body)
        for item in event["data"]["items"]:
            self.items.append((request.headers["webhook-id"], sub, item["condition"]["id"]))
        self.last_at = time.monotonic()
        return web.Response(status=200)


class NoticeFeed:
    """The notice feed `capmon produce` reads (`sources.notice_feed_url`), as the replay server
    serves it at /replay/notices: a listing, then each email. The emails are the 2022 heat
    wave's numbered EEA notices, each the first and only word on its own condition (a
    superseding notice would be an update, a second delivery of an item already counted). The
    one at `held_at` is held the first time it is fetched: its whole body sent, its end withheld.
    """

    path = "/replay/notices"

    def __init__(self, held_at: int) -> None:
        files = sorted(p for p in NOTICES.glob("*.eml") if "-eea-" in p.name)
        raws = [p.read_bytes() for p in files]
        # decide alerts on windows still to come, and these passed in 2022: every date moves
        # by the same number of days, to the day after tomorrow at the earliest, times of day
        # kept, so each notice is scheduled when read and none starts during the trial.
        first = min(date(int(m[3]), int(m[1]), int(m[2]))
                    for raw in raws for m in _DATE.finditer(raw))
        days = (datetime.now(PACIFIC).date() - first).days + 2
        self.condition_ids = [f"caiso.notice:{p.stem.rsplit('-', 1)[1]}" for p in files]
        self.hold = Hold()
        self.fake = FakeCaiso(SystemClock())
        listing = [{"name": p.name, "url": f"{self.path}/{p.name}",
                    "delivered_at": datetime.now(UTC).isoformat()} for p in files]
        self.fake.script(self.path, Reply(body=json.dumps({"messages": listing}).encode(),
                                          content_type="application/json"))
        for i, (p, raw) in enumerate(zip(files, raws, strict=True)):
            reply = Reply(body=_moved(raw, days), content_type="message/rfc822")
            once = [dataclasses.replace(reply, hold=self.hold)] if i == held_at else []
            self.fake.script(f"{self.path}/{p.name}", *once, reply)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        self._runner, port = await _serve(self.fake.app)
        self.url = f"http://127.0.0.1:{port}{self.path}"

    async def stop(self) -> None:
        self.hold.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


def _moved(raw: bytes, days: int) -> bytes:
    def later(m: re.Match[bytes]) -> bytes:
        day = date(int(m[3]), int(m[1]), int(m[2])) + timedelta(days=days)
        return day.strftime("%m/%d/%Y").encode()
    return _DATE.sub(later, raw)


@dataclass
class TrialOutcome:
    scenario: str
    expected: int
    lost: int
    duplicates_same_id: int
    duplicates_other: int
    unverified: int
    recover_s: float | None
    logs: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "logs"}


class Trial:
    """A fresh database, subscriptions and roles on the suite's services."""

    def __init__(self, services: ChaosServices, workdir: Path, *, subscribers: int = 10,
                 conditions: int = 30) -> None:
        self.services = services
        self.workdir = workdir
        self.subscribers, self.conditions = subscribers, conditions
        self.trial = uuid.uuid4().hex[:8]
        self.db = f"chaos_{self.trial}"
        self.receiver = Receiver()
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.sub_ids: list[str] = []
        self.fault_ended = 0.0
        self.condition_ids = [f"caiso.notice:9{self.trial}{i:04d}" for i in range(conditions)]
        self.role_env: dict[str, dict[str, str]] = {}
        self.servers: list[NoticeFeed] = []

    @property
    def store_url(self) -> str:
        return make_url(self.services.pg_admin_url).set(database=self.db).render_as_string(
            hide_password=False)

    def env(self, role: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
        env.update({
            "PYTHONPATH": str(ROOT),
            "CAPMON_KAFKA_BOOTSTRAP": self.services.bootstrap,
            "CAPMON_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CAPMON_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "CAPMON_KAFKA_COMMIT_INTERVAL_S": "0.05",
            "CAPMON_STORE_URL": self.store_url,
            "CAPMON_DECIDE_GROUP_INTERVAL_S": "0",
            "CAPMON_DELIVER_SCHEDULER_INTERVAL_S": "0.5",
            "CAPMON_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]', "CAPMON_WEBHOOK_ALLOW_HTTP": "true",
            "CAPMON_WEBHOOK_TIMEOUT_S": "5",
            "CAPMON_API_OPS_ENABLED": "false",
            "CAPMON_LOG_FORMAT": "json", "CAPMON_LOG_LEVEL": "info",
        })
        env.update(self.role_env.get(role, {}))
        return env

    async def setup(self) -> None:
        engine = create_async_engine(self.services.pg_admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{self.db}"'))
        await engine.dispose()
        await self.receiver.start()
        store = Store(self.store_url)
        await store.upgrade()
        now = datetime.now(UTC)
        async with store.begin() as conn:
            tenant, _ = await tenant_store.create_tenant(conn, f"Chaos {self.trial}", None, now)
            for i in range(self.subscribers):
                spec = SubscriptionSpec.model_validate({
                    "name": f"desk {i}", "match": {"kinds": ["caiso.eea"]},
                    "channel": {"type": "webhook",
                                "url": f"http://127.0.0.1:{self.receiver.port}/hook/{i}"}})
                sub, secret = await sub_store.create(conn, tenant.id, spec, now)
                assert secret is not None
                self.receiver.secrets[str(i)] = secret
                self.sub_ids.append(sub.id)
        await store.close()
        bus = KafkaBus(KafkaSettings(bootstrap=self.services.bootstrap))
        await bus.start()
        await bus.ensure_topics(TOPIC_SPECS)
        await bus.close()

    def start(self, role: str) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{self.trial}-{role}.log"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "-m", "capmon.cli", role], cwd=ROOT,
                                    env=self.env(role), stdout=out, stderr=subprocess.STDOUT)
        self.procs.setdefault(role, []).append(proc)
        return proc

    async def kill(self, role: str) -> None:
        for proc in self.procs.get(role, []):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                await asyncio.get_running_loop().run_in_executor(None, proc.wait)

    async def stop_all(self) -> None:
        for procs in self.procs.values():
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        for procs in self.procs.values():
            for proc in procs:
                try:
                    await asyncio.wait_for(
                        asyncio.get_running_loop().run_in_executor(None, proc.wait), 40)
                except TimeoutError:
                    proc.kill()

    def _notice(self, i: int, now: datetime) -> Condition:
        no = f"9{self.trial}{i:04d}"
        return Condition(
            id=f"caiso.notice:{no}", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
            status=Status.ACTIVE, regions=("CAISO Grid",),
            window=Window(start=now - timedelta(minutes=1), end=now + timedelta(hours=6)),
            attributes=NoticeAttributes(notice_no=no, level="3"),
            revision=revision_at(now), observed_at=now)

    async def burst(self, *, spread_s: float = 0.0) -> None:
        """Publish the trial's notices (over `spread_s` seconds, so a fault lands mid-burst)."""
        bus = KafkaBus(KafkaSettings(bootstrap=self.services.bootstrap))
        await bus.start()
        try:
            for i in range(self.conditions):
                c = self._notice(i, datetime.now(UTC))
                await bus.publish(CAISO, c.id, condition_event(c, "/chaos"))
                if spread_s:
                    await asyncio.sleep(spread_s / self.conditions)
        finally:
            await bus.close()

    @property
    def expected(self) -> set[tuple[str, str]]:
        return {(str(s), c) for s in range(self.subscribers) for c in self.condition_ids}

    def received(self) -> set[tuple[str, str]]:
        return {(sub, cond) for _id, sub, cond in self.receiver.items} & self.expected

    async def wait_delivered(self, fraction: float, timeout: float) -> bool:
        want = int(len(self.expected) * fraction)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received()) >= want:
                return True
            await asyncio.sleep(0.1)
        return False

    def outcome(self, scenario: str) -> TrialOutcome:
        mine = [(wid, sub, cond) for wid, sub, cond in self.receiver.items
                if (sub, cond) in self.expected]
        per_item = Counter((sub, cond) for _wid, sub, cond in mine)
        per_delivery = Counter(mine)
        same_id = sum(n - 1 for n in per_delivery.values() if n > 1)
        other = sum(n - 1 for n in per_item.values() if n > 1) - same_id
        recover = (max(0.0, self.receiver.last_at - self.fault_ended)
                   if self.fault_ended and self.receiver.last_at else None)
        logs = {p.name: p.read_text(errors="replace")[-4000:]
                for p in self.workdir.glob(f"{self.trial}-*.log")}
        return TrialOutcome(scenario, len(self.expected), len(self.expected - self.received()),
                            same_id, other, self.receiver.unverified, recover, logs)

    async def close(self) -> None:
        await self.stop_all()
        await self.receiver.stop()
        for server in self.servers:
            await server.stop()


Scenario = Callable[[Trial], Awaitable[None]]


async def _roles(t: Trial, delivers: int = 1) -> None:
    t.start("decide")
    for _ in range(delivers):
        t.start("deliver")
    await asyncio.sleep(4)  # both processes joined their groups


async def _kill_and_restart(t: Trial, roles: tuple[str, ...]) -> None:
    await _roles(t)
    burst = asyncio.create_task(t.burst(spread_s=4))
    await t.wait_delivered(0.2, 60)
    for role in roles:
        await t.kill(role)
    for role in roles:
        t.start(role)
    t.fault_ended = time.monotonic()
    await burst


async def kill_decide(t: Trial) -> None:
    await _kill_and_restart(t, ("decide",))


async def kill_deliver(t: Trial) -> None:
    await _kill_and_restart(t, ("deliver",))


async def kill_both(t: Trial) -> None:
    await _kill_and_restart(t, ("decide", "deliver"))


async def kill_produce(t: Trial) -> None:
    feed = NoticeFeed(held_at=8)
    t.servers.append(feed)
    await feed.start()
    t.condition_ids = feed.condition_ids
    t.role_env["produce"] = {"CAPMON_SOURCES_ENABLED": "caiso-notices",
                             "CAPMON_SOURCES_NOTICE_FEED_URL": feed.url}
    await _roles(t)
    t.start("produce")
    # Eight notices are published by now; the ninth is read to its last byte and not yet
    # handed back to produce, so nothing of it is published or recorded.
    await asyncio.wait_for(feed.hold.sent.wait(), 60)
    await t.kill("produce")
    feed.hold.release.set()
    t.start("produce")
    t.fault_ended = time.monotonic()


async def postgres_stopped(t: Trial, outage_s: float = 20.0) -> None:
    await _roles(t)
    burst = asyncio.create_task(t.burst(spread_s=4))
    await t.wait_delivered(0.1, 60)
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: t.services.stop_postgres(immediate=True))
    await asyncio.sleep(outage_s)
    await asyncio.get_running_loop().run_in_executor(None, t.services.start_postgres)
    t.fault_ended = time.monotonic()
    await burst


async def broker_stopped(t: Trial, outage_s: float = 20.0) -> None:
    await _roles(t)
    # The broker goes as soon as the burst is in: decide and deliver are mid-way through it,
    # with records fetched, notifications to publish and offsets to commit.
    await t.burst()
    started = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, t.services.stop_kafka)
    await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - started)))
    await asyncio.get_running_loop().run_in_executor(None, t.services.start_kafka)
    t.fault_ended = time.monotonic()


async def receiver_503(t: Trial, outage_s: float = 30.0) -> None:
    await _roles(t)
    t.receiver.failing_until = time.monotonic() + outage_s
    await t.burst()
    await asyncio.sleep(outage_s)
    t.fault_ended = time.monotonic()


async def two_delivers(t: Trial) -> None:
    await _roles(t, delivers=2)
    await t.burst(spread_s=2)
    t.fault_ended = time.monotonic()


SCENARIOS: dict[str, Scenario] = {
    "kill -9 decide": kill_decide,
    "kill -9 deliver": kill_deliver,
    "kill -9 decide and deliver": kill_both,
    "kill -9 produce between fetch and publish": kill_produce,
    "PostgreSQL stopped 20 s": postgres_stopped,
    "broker stopped 20 s": broker_stopped,
    "receiver 503 for 30 s": receiver_503,
    "two deliver processes": two_delivers,
}


async def run_trial(services: ChaosServices, workdir: Path, name: str, *,
                    settle_timeout_s: float = 240.0) -> TrialOutcome:
    t = Trial(services, workdir)
    await t.setup()
    try:
        await SCENARIOS[name](t)
        if not t.fault_ended:
            t.fault_ended = time.monotonic()
        await t.wait_delivered(1.0, settle_timeout_s)
        await asyncio.sleep(2)  # a late duplicate has its chance to show
    finally:
        await t.close()
    return t.outcome(name)
