"""`capmon demo`: a recorded grid emergency, replayed through the whole of capmon.

One process runs the replay server (the scenario's snapshots at the sources' own URL paths),
the local sinks (webhook receiver, SMTP server, Twilio stand-in), capmon's API, and the real
`produce`, `decide` and `deliver` roles, on the embedded bus or a Kafka cluster, with a SQLite
store in the output directory. Time is a ManualClock that a `TimeDriver` moves from one
deadline to the next once capmon has finished reacting (or at `speed` x real time).

Two choices keep a twelve-day scenario under a minute, and both are configuration, not code
paths of their own: sources are polled every 5 minutes (Flex Alert API, SCE) and the
Today's Outlook CSVs hourly (`sources.intervals`), without jitter; and the notice emails are
read from the replay server's mail drop (`sources.notice_feed_url`), woken when the next one
arrives as an IMAP IDLE client would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from aiohttp import web

from capmon.api import api_app
from capmon.demo import DEFAULT_SCENARIO, subscribers
from capmon.demo.bus import ObservedBus
from capmon.demo.driver import TimeDriver
from capmon.demo.oncall import OnCall
from capmon.demo.sinks import Received, SmsSink, SmtpSink, WebhookSink
from capmon.demo.timeline import TimelinePrinter
from capmon.replay import ReplayServer, load_timeline
from capmon.roles import ROLES
from monitor import ledger
from monitor.api.server import api_runner
from monitor.bus import make_bus
from monitor.clock import PACIFIC, ManualClock
from monitor.config import Settings
from monitor.runtime import Runtime, register_config_secrets
from monitor.store import Store
from monitor.store.schema import conditions as conditions_table
from monitor.topics import TOPIC_SPECS

log = structlog.get_logger(__name__)

# Poll cadence of the demo (seconds); see the module docstring.
DEMO_INTERVALS = {"caiso-stats": 7200.0, "caiso-flex": 900.0, "sce-dr": 900.0,
                  "caiso-oasis": 3600.0, "caiso-demand": 900.0, "caiso-ra-outlook": 43200.0}
DEMO_ROLES = ("produce", "decide", "deliver")


@dataclass
class DemoOptions:
    scenario: Path = DEFAULT_SCENARIO
    out: Path = Path("demo-out")
    speed: float | None = None  # None: as fast as capmon keeps up
    subscriptions: Path | None = None
    kafka: str | None = None
    quiet: bool = False
    until: datetime | None = None  # stop early (tests of a slice of the scenario)
    # Set (by SIGINT/SIGTERM) to end the replay at the present, with its summary.
    interrupt: asyncio.Event | None = None


@dataclass
class DemoResult:
    summary: dict[str, Any]
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


OUTPUTS = ("deliveries.jsonl", "subscriptions.json", "summary.json")


def _fresh_db(out: Path) -> str:
    """A new store, and nothing left of the previous run beside it: an interrupted run's
    files must never be read as this one's."""
    db = out / "capmon-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{db}"


def demo_settings(opts: DemoOptions, replay_url: str, api_url: str, smtp_port: int,
                  twilio: SmsSink) -> Settings:
    return Settings(
        store={"url": _fresh_db(opts.out)},
        kafka={"bootstrap": opts.kafka or "", "client_id": "capmon-demo"},
        api={"host": "127.0.0.1", "port": 0, "public_url": api_url, "ops_enabled": False,
             "link_secret": secrets.token_urlsafe(32)},
        log={"level": "warning"},
        sources={
            "caiso_outlook_url": f"{replay_url}/outlook",
            "caiso_flex_url":
                f"{replay_url}/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents",
            "caiso_oasis_url": f"{replay_url}/oasisapi/SingleZip",
            "sce_api_url": f"{replay_url}/m.dr.website/resteasy/services",
            "sce_html_url": f"{replay_url}/dr.website",
            "sce_mode": "api",
            "intervals": DEMO_INTERVALS,
            "jitter": False,
            "notice_feed_url": f"{replay_url}/replay/notices",
        },
        imap={"poll_interval_s": 3600.0},
        smtp={"host": "127.0.0.1", "port": smtp_port,
              "sender": "capmon demo <alerts@capmon.invalid>"},
        twilio={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                "from_number": "+15005550006", "api_base_url": twilio.base},
        webhook={"allow_hosts": ["127.0.0.1"], "allow_http": True},
        # The scheduler hourly: it sleeps until the next retry it knows of, and a call that
        # rang out is rescheduled by the API's status callback beside it, which tells it
        # (`ledger.on_rescheduled`). Calls at 10 a second (Twilio's default is 1): the
        # all-clear calls of 20:00 go at once, since a send waiting out the rate on the
        # scenario clock holds its record unacknowledged, and the driver moves the clock
        # only once none is.
        deliver={"scheduler_interval_s": 3600.0, "heartbeat_s": 3600.0, "concurrency": 1,
                 "voice_rate_per_s": 10.0},
        decide={"max_tick_s": 21600.0, "refresh_s": 21600.0},
    )


async def run_demo(opts: DemoOptions, printer: TimelinePrinter | None = None) -> DemoResult:
    started = time.perf_counter()
    timeline = load_timeline(opts.scenario)
    opts.out.mkdir(parents=True, exist_ok=True)
    end = min(opts.until or timeline.end, timeline.end)
    clock = ManualClock(timeline.start)
    printer = printer or TimelinePrinter(quiet=opts.quiet)
    stack = contextlib.AsyncExitStack()
    async with stack:
        replay = ReplayServer(timeline, clock)
        await replay.start()
        stack.push_async_callback(replay.close)
        hooks = WebhookSink(clock, printer.on_receive)
        await hooks.start()
        stack.push_async_callback(hooks.close)
        smtp = SmtpSink(clock, printer.on_receive)
        smtp_port = await smtp.start()
        stack.push_async_callback(smtp.close)
        sms = SmsSink(clock, printer.on_receive, account_sid="AC" + uuid.uuid4().hex,
                      auth_token=secrets.token_hex(16))
        await sms.start()
        stack.push_async_callback(sms.stop)
        api_sock = _bound_socket()
        api_url = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
        settings = demo_settings(opts, replay.base_url, api_url, smtp_port, sms)
        register_config_secrets(settings)

        prefix = f"demo-{uuid.uuid4().hex[:8]}." if opts.kafka else ""
        bus = ObservedBus(make_bus(settings), prefix=prefix)
        await bus.start()
        stack.push_async_callback(bus.close)
        await bus.ensure_topics(TOPIC_SPECS)
        store = Store(settings.store.url)
        await store.upgrade()
        stack.push_async_callback(store.close)
        rt = Runtime(settings=settings, clock=clock, bus=bus, store=store)

        story = subscribers.read_file(opts.subscriptions or opts.scenario /
                                      "subscriptions.yaml")
        subs = await subscribers.load(store, story, hooks.url, clock.now())
        hooks.secrets = {s.id: s.secret for s in subs if s.secret}
        sms.voice.behaviours = {n: p.behaviour() for n, p in story.phones.items()}
        printer.subscribers(subs)

        def received() -> list[Received]:
            return hooks.received + smtp.received + sms.received

        oncall = OnCall(store, subs, received)

        async def look() -> None:
            new_acks, steps = await oncall.look()
            for s in steps:
                printer.on_step(s)
            for a in new_acks:
                printer.on_ack(a)

        api = api_runner(api_app(rt), rt.settings.api)
        await api.setup()
        await web.SockSite(api, api_sock).start()
        stack.push_async_callback(api.cleanup)
        printer.start(timeline.scenario, timeline.start, end, bus.name, api_url)

        stop = asyncio.Event()
        tasks: list[asyncio.Future[None]] = [
            asyncio.ensure_future(ROLES[name](rt, stop)) for name in DEMO_ROLES]
        driver = TimeDriver(clock, bus, busy=sms.in_flight, speed=opts.speed,
                            on_settled=look)
        try:
            await driver.calibrate()
            await driver.run_until(end, opts.interrupt)
            end = min(end, clock.now())
        finally:
            stop.set()
            # Roles drain on stop; a sleeper left on the scenario clock must not hold them.
            for _ in range(200):
                if all(t.done() for t in tasks):
                    break
                deadline = clock.next_deadline()
                if deadline is not None:
                    clock.set(deadline)
                await asyncio.sleep(0.01)
            for task in tasks:
                if not task.done():
                    task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for name, res in zip(DEMO_ROLES, results, strict=True):
            if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
                raise RuntimeError(f"the {name} role failed: {res!r}") from res

        deliveries = await _describe(store, sorted(
            received(), key=lambda r: (r.received_at, r.channel, r.recipient)), subs)
        summary = await _summary(store, timeline.scenario, timeline.start, end, opts, bus,
                                 driver, deliveries, subs, time.perf_counter() - started)
        summary |= await oncall.summary([d["notification_key"] for d in deliveries
                                         if d["notification_key"]])
        _write(opts.out, deliveries, subs, summary)
        printer.finish(summary, deliveries, subs)
        return DemoResult(summary=summary, deliveries=deliveries)


async def _describe(store: Store, received: list[Received],
                    subs: list[subscribers.DemoSubscription]) -> list[dict[str, Any]]:
    """One deliveries.jsonl object per message a sink received, with what the ledger knows."""
    out = []
    async with store.connect() as conn:
        for r in received:
            entry = await ledger.get(conn, r.notification_key) if r.notification_key else None
            n = entry.notification() if entry is not None else None
            out.append({
                "channel": r.channel,
                "subscription_id": n.subscription_id if n else r.subscription_id,
                "recipient": r.recipient,
                "received_at": r.received_at.astimezone(PACIFIC).isoformat(),
                "notification_key": r.notification_key,
                "severity": n.severity.value if n else None,
                "kinds": sorted({i.condition.kind.value for i in n.items}) if n else [],
                "condition_ids": [i.condition.id for i in n.items] if n else [],
                "transitions": [i.transition.value for i in n.items] if n else [],
                "summary": n.summary if n else r.summary,
                "signature_verified": r.signature_verified,
                "call": r.call,
                "headers": r.headers,
                "body": r.body,
            })
    return out


def heard(d: dict[str, Any]) -> bool:
    """Whether anyone received the message: a call that rang out reached nobody (and its
    retry, the same notification, is no duplicate)."""
    return d["call"] is None or d["call"]["outcome"] == "completed"


async def _summary(store: Store, scenario: str, start: datetime, end: datetime,
                   opts: DemoOptions, bus: ObservedBus, driver: TimeDriver,
                   deliveries: list[dict[str, Any]],
                   subs: list[subscribers.DemoSubscription], wall_s: float) -> dict[str, Any]:
    async with store.connect() as conn:
        states = await ledger.count_by_state(conn)
        suppressed = await ledger.count_suppressed_by_reason(conn)
        kinds: dict[str, int] = dict((await conn.execute(
            sa.select(conditions_table.c.kind, sa.func.count())
            .group_by(conditions_table.c.kind))).all())
    per_sub = Counter(d["subscription_id"] for d in deliveries)
    webhooks = [d for d in deliveries if d["channel"] == "webhook"]
    return {
        "scenario": scenario,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "interrupted": opts.interrupt is not None and opts.interrupt.is_set(),
        "bus": bus.name,
        "speed": "max" if opts.speed is None else opts.speed,
        "wall_seconds": round(wall_s, 2),
        "clock_steps": driver.stats.steps,
        "records_published": dict(bus.published),
        "conditions_by_kind": {str(k): int(v) for k, v in sorted(kinds.items())},
        "notifications_by_state": dict(states),
        "suppressed_by_reason": dict(sorted(suppressed.items())),
        "deliveries": len(deliveries),
        "deliveries_by_channel": dict(Counter(d["channel"] for d in deliveries)),
        "signatures_verified": sum(1 for d in webhooks if d["signature_verified"]),
        "signatures_failed": sum(1 for d in webhooks if not d["signature_verified"]),
        "calls_unanswered": sum(1 for d in deliveries if not heard(d)),
        "duplicates": sum(1 for d in deliveries if heard(d)) - len(
            {(d["channel"], d["notification_key"]) for d in deliveries if heard(d)}),
        "subscriptions": [{"id": s.id, "tenant": s.tenant, "name": s.name,
                           "channel": s.channel, "deliveries": per_sub.get(s.id, 0)}
                          for s in subs],
    }


def _write(out: Path, deliveries: list[dict[str, Any]],
           subs: list[subscribers.DemoSubscription], summary: dict[str, Any]) -> None:
    with (out / "deliveries.jsonl").open("w", encoding="utf-8") as f:
        for d in deliveries:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    (out / "subscriptions.json").write_text(json.dumps(
        [{"id": s.id, "tenant_id": s.tenant_id, "tenant": s.tenant, "name": s.name,
          "channel": s.channel, "target": s.target, "original_target": s.original_target,
          "secret": s.secret, "spec": s.spec} for s in subs], indent=2) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

