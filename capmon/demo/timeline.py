"""The demo's live timeline in the terminal (rich): one line per message a sink receives (a
call once it has rung out or been answered), each acknowledgement and each escalation step
paged, in scenario time (Pacific), under a heading per scenario day; a table per subscriber
at the end."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from capmon.demo.oncall import Acknowledged, StepPaged
from capmon.demo.sinks import Received
from capmon.demo.subscribers import DemoSubscription
from monitor.clock import PACIFIC

CHANNEL_LABEL = {"sms": "SMS    ", "email": "email  ", "webhook": "webhook",
                 "voice": "call   "}
HOW = {"voice": "by keypress", "sms": "by SMS reply", "email": "by the email's link",
       "api": "through the API", "portal": "in the portal", "cli": "from the command line"}


class TimelinePrinter:
    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or Console(highlight=False)
        self.quiet = quiet
        self._names: dict[str, str] = {}  # subscription id or recipient -> short name
        self._day: date | None = None
        self.lines: list[str] = []

    def subscribers(self, subs: list[DemoSubscription]) -> None:
        for s in subs:
            prefix = s.tenant_slug.upper()
            label = s.name if s.name.upper().startswith(prefix) else f"{prefix} {s.name}"
            self._names[s.id] = label
            # A number may be texted by one subscription and called by another.
            self._names.setdefault(f"{s.channel}:{s.target}", label)

    def start(self, scenario: str, start: datetime, end: datetime, bus: str,
              api_url: str) -> None:
        if self.quiet:
            return
        self.console.rule(f"capmon demo: {scenario}")
        self.console.print(f"scenario {start.astimezone(PACIFIC):%Y-%m-%d %H:%M} .. "
                           f"{end.astimezone(PACIFIC):%Y-%m-%d %H:%M} Pacific · bus {bus} · "
                           f"status page {api_url}/")

    def on_receive(self, r: Received) -> None:
        at = r.received_at.astimezone(PACIFIC)
        who = self._names.get(r.subscription_id or "") \
            or self._names.get(f"{r.channel}:{r.recipient}") or r.recipient
        summary = " ".join(r.summary.split())
        if r.channel == "email":
            summary = summary.removeprefix("[capmon] ")
        line = f"{at:%m/%d %H:%M} {CHANNEL_LABEL.get(r.channel, r.channel)} {who[:34]:<34} " \
               f"{summary[:90]}"
        if r.signature_verified is False:
            line += "  [SIGNATURE INVALID]"
        self._print(at, line)

    def on_ack(self, a: Acknowledged) -> None:
        at = a.ack.at.astimezone(PACIFIC)
        who = self._names.get(a.subscription_id, a.ack.by)
        self._print(at, f"{at:%m/%d %H:%M} ✔ {who} acknowledged {a.label} "
                        f"{HOW.get(a.ack.via.value, a.ack.via.value)} ({a.ack.by})", "bold")

    def on_step(self, s: StepPaged) -> None:
        at = s.at.astimezone(PACIFIC)
        who = ", ".join(self._names.get(i, i) for i in s.subscription_ids)
        what = "paged first" if s.step == 0 else "escalated: nobody acknowledged, paging"
        self._print(at, f"{at:%m/%d %H:%M} ▲ {s.policy!r} step {s.step} {what}: {who} "
                        f"({s.condition_id})", "bold")

    def _print(self, at: datetime, line: str, style: str = "") -> None:
        self.lines.append(line)
        if self.quiet:
            return
        if at.date() != self._day:
            self._day = at.date()
            self.console.rule(f"{at:%A %Y-%m-%d}", style="dim")
        self.console.print(Text(line, style=style))

    def finish(self, summary: dict[str, Any], deliveries: list[dict[str, Any]],
               subs: list[DemoSubscription]) -> None:
        if self.quiet:
            return
        table = Table(title="Deliveries per subscriber")
        for col in ("tenant", "subscription", "channel", "messages", "first", "last"):
            table.add_column(col)
        by_sub: dict[str, list[dict[str, Any]]] = {}
        for d in deliveries:
            by_sub.setdefault(d["subscription_id"], []).append(d)
        for s in subs:
            got = by_sub.get(s.id, [])
            table.add_row(s.tenant_slug.upper(), s.name, s.channel, str(len(got)),
                          got[0]["received_at"][5:16].replace("T", " ") if got else "-",
                          got[-1]["received_at"][5:16].replace("T", " ") if got else "-")
        self.console.print(table)
        channels = Counter(d["channel"] for d in deliveries)
        by_channel = ", ".join(f"{v} {k}" for k, v in sorted(channels.items()))
        self.console.print(
            f"{summary['deliveries']} messages ({by_channel}); "
            f"webhook signatures verified {summary['signatures_verified']}, failed "
            f"{summary['signatures_failed']}; duplicates {summary['duplicates']}; "
            f"{summary['wall_seconds']} s wall clock, {summary['clock_steps']} clock steps")
