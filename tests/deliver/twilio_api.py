"""The Twilio stand-in and capmon's real API beside it, wired to each other, for the tests of
the Twilio channels: the stand-in posts its signed callbacks to the API's public URL, and the
settings point the notifiers at the stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from capmon.api import api_app
from capmon.demo.twilio_standin import TwilioStandIn
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import ApiSettings, Settings, TwilioSettings
from monitor.runtime import Runtime
from monitor.store import Store
from tests.deliver.conftest import LINK_SECRET
from tests.deliver.receivers import free_port


@dataclass(frozen=True)
class TwilioApi:
    settings: Settings
    twilio: TwilioStandIn
    api: str  # the API's public URL
    http: aiohttp.ClientSession


@asynccontextmanager
async def twilio_api(store: Store, bus: MemoryBus, clock: ManualClock, account: str,
                     token: str, **sender: str | None) -> AsyncIterator[TwilioApi]:
    """`sender`: the account's messaging_service_sid and/or from_number."""
    standin = TwilioStandIn(account, token, now=clock.now)
    await standin.start()
    port = free_port()
    settings = Settings(
        api=ApiSettings(public_url=f"http://127.0.0.1:{port}", link_secret=LINK_SECRET),
        twilio=TwilioSettings(account_sid=account, auth_token=SecretStr(token),
                              api_base_url=standin.base, **sender))
    rt = Runtime(settings=settings, clock=clock, bus=bus, store=store)
    runner = web.AppRunner(api_app(rt), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as http:
        try:
            yield TwilioApi(settings, standin, f"http://127.0.0.1:{port}", http)
        finally:
            await standin.stop()
            await runner.cleanup()
