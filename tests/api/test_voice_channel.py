"""The voice channel at the API: validated like SMS (E.164), with its retries and their
interval; configured only with a Twilio number and credentials; refused for a number that
pressed 9; described in the OpenAPI document by a pattern every value of which is taken."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from monitor.api.channel_schema import CALL_RETRY_PATTERN
from monitor.api.voice_hooks import STOP_REASON
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import AdminSettings, ApiSettings, Settings, TwilioSettings
from monitor.runtime import Runtime
from monitor.store import Store, endpoints
from monitor.subscriptions import VoiceTarget
from tests.api.conftest import ADMIN_KEY, bearer, make_app, new_tenant

PHONE = "+14155550142"


def voice(**channel: Any) -> dict[str, Any]:
    return {"name": "duty scheduler", "match": {"kinds": ["caiso.eea"]},
            "channel": {"type": "voice", "phone": PHONE, **channel}}


async def test_a_voice_subscription_with_its_defaults(client: TestClient[Any, Any]) -> None:
    _tid, key = await new_tenant(client, "CPA")
    resp = await client.post("/v1/subscriptions", headers=bearer(key),
                             json=voice(phone="+1 (415) 555-0142"))
    assert resp.status == 201, await resp.text()
    sub = await resp.json()
    assert sub["channel"] == {"type": "voice", "phone": PHONE, "retries": 2,
                              "retry_interval": "PT2M"}
    assert sub["secret"] is None
    resp = await client.put(f"/v1/subscriptions/{sub['id']}", headers=bearer(key),
                            json=voice(retries=0, retry_interval="PT10M"))
    assert resp.status == 200
    assert (await resp.json())["channel"]["retries"] == 0


@pytest.mark.parametrize(("channel", "field"), [
    ({"phone": "+1415555"}, "phone"),
    ({"phone": "4155550142"}, "phone"),
    ({"retries": 6}, "retries"),
    ({"retries": -1}, "retries"),
    ({"retry_interval": "PT30S"}, "retry_interval"),
    ({"retry_interval": "two minutes"}, "retry_interval"),
    ({"url": "https://hooks.cca.example/x"}, "url"),
])
async def test_bad_voice_channels_are_refused_clearly(client: TestClient[Any, Any],
                                                      channel: dict[str, Any],
                                                      field: str) -> None:
    _tid, key = await new_tenant(client, "DCE")
    resp = await client.post("/v1/subscriptions", headers=bearer(key), json=voice(**channel))
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    errors = (await resp.json())["errors"]
    assert any(e["loc"][-1] == field for e in errors), errors


async def test_voice_needs_a_from_number(store: Store, clock: ManualClock,
                                         aiohttp_client: Any) -> None:
    # A Messaging Service sends texts, not calls.
    settings = Settings(admin=AdminSettings(key=SecretStr(ADMIN_KEY)),
                        api=ApiSettings(link_secret=SecretStr("link-secret-0123456789abcdef")),
                        twilio=TwilioSettings(account_sid="AC" + "0" * 32,
                                              auth_token=SecretStr("token"),
                                              messaging_service_sid="MG" + "0" * 32))
    rt = Runtime(settings=settings, clock=clock, bus=MemoryBus(), store=store)
    await rt.bus.start()
    client: TestClient[Any, Any] = await aiohttp_client(make_app(rt))
    try:
        _tid, key = await new_tenant(client, "CPA")
        resp = await client.post("/v1/subscriptions", headers=bearer(key), json=voice())
        assert resp.status == 422
        assert (await resp.json())["detail"] == (
            "the voice channel is not configured: set CAPMON_TWILIO_FROM_NUMBER")
        sms = {**voice(), "channel": {"type": "sms", "phone": PHONE}}
        assert (await client.post("/v1/subscriptions", headers=bearer(key),
                                  json=sms)).status == 201
        doc = await (await client.get("/openapi.json")).json()
        assert "VoiceTargetRequest" not in doc["components"]["schemas"]
    finally:
        await rt.bus.close()


async def test_a_number_that_pressed_9_is_not_called_again(client: TestClient[Any, Any],
                                                           store: Store,
                                                           clock: ManualClock) -> None:
    _tid, key = await new_tenant(client, "CPA")
    async with store.begin() as conn:  # what a 9 on a call does
        await endpoints.record_opt_out(conn, "voice", PHONE, STOP_REASON, clock.now())
    resp = await client.post("/v1/subscriptions", headers=bearer(key), json=voice())
    assert resp.status == 409
    assert "opted out (voice 9)" in (await resp.json())["detail"]
    # Texts to the same number are another consent.
    sms = {**voice(), "channel": {"type": "sms", "phone": PHONE}}
    assert (await client.post("/v1/subscriptions", headers=bearer(key), json=sms)).status == 201


async def test_the_document_describes_what_is_taken(client: TestClient[Any, Any]) -> None:
    doc = await (await client.get("/openapi.json")).json()
    schema = doc["components"]["schemas"]["VoiceTargetRequest"]
    assert schema["required"] == ["type", "phone"]
    assert schema["properties"]["retries"] == {
        "type": "integer", "minimum": 0, "maximum": 5, "default": 2,
        "description": "more calls after a busy, unanswered or failed one"}
    for minutes in range(1, 60):
        value = f"PT{minutes}M"
        assert re.fullmatch(CALL_RETRY_PATTERN, value)
        VoiceTarget(type="voice", phone=PHONE, retry_interval=value)
    assert not re.fullmatch(CALL_RETRY_PATTERN, "PT0M")
    paths = doc["paths"]
    for path in ("status", "amd", "gather"):
        assert f"/v1/twilio/voice/{path}" in paths
