"""The portal's pages do what the API does, with the API's checks and words: create, edit,
pause, delete, test, rotate, the delivery log and replay; and one tenant never reaches
another's subscriptions or notifications (404)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from selectolax.lexbor import LexborHTMLParser

from monitor import ledger
from monitor.api.portal import forms
from monitor.api.problems import Problem
from monitor.clock import ManualClock
from monitor.ledger import AttemptRecord, Verdict
from monitor.runtime import Runtime
from monitor.store import Store, endpoints
from monitor.store import subscriptions as sub_store
from monitor.subscriptions import SubscriptionSpec
from monitor.topics import NOTIFICATIONS
from tests.api.conftest import bearer, make_app, make_runtime, new_tenant
from tests.portal.conftest import Browser, location

WEBHOOK = {"name": "Scheduling system", "channel_type": "webhook",
           "url": "https://hooks.cca.example/capmon", "min_severity": "warning",
           "regions": "SCE-TAC\nSouthern CA Region", "programs": "CPP, BIP",
           "quiet_start": "22:00", "quiet_end": "06:00", "quiet_bypass": "emergency",
           "threshold_rows": "2", "t0_kind": "caiso.peak_forecast", "t0_area": "SCE-TAC",
           "t0_day": "tomorrow", "t0_direction": "above", "t0_level": "23000",
           "t0_clear": "22500", "t0_severity": "warning"}
FIELDS = [*WEBHOOK.items(), ("kinds", "caiso.eea"), ("kinds", "caiso.peak_forecast"),
          ("transitions", "issued"), ("transitions", "ended")]


def fields_of(html: str, action: str) -> list[tuple[str, str]]:
    """What a browser would post for the form with this action, as the page filled it."""
    node = LexborHTMLParser(html).css_first(f'form[action="{action}"]')
    assert node is not None, action
    out = []
    for el in node.css("input, select, textarea"):
        name, kind = el.attributes.get("name"), el.attributes.get("type")
        if not name or (kind in ("checkbox", "radio") and "checked" not in el.attributes):
            continue
        if el.tag == "select":
            chosen = el.css_first("option[selected]") or el.css_first("option")
            assert chosen is not None
            out.append((name, chosen.attributes.get("value") or ""))
        elif el.tag == "textarea":
            out.append((name, el.text()))
        else:
            out.append((name, el.attributes.get("value") or ""))
    return out


def form(**changes: str) -> list[tuple[str, str]]:
    return [(k, changes.get(k, v)) for k, v in FIELDS]


def alert(html: str) -> str:
    m = re.search(r'<div class="alert" role="alert">(.*?)</div>', html, re.S)
    assert m is not None, html
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(1))).strip())


async def create(browser: Browser, fields: list[tuple[str, str]]) -> tuple[str, str]:
    """(subscription id, page) of a subscription created through the form."""
    resp = await browser.post("/portal/subscriptions/new", fields)
    html = await resp.text()
    assert resp.status == 200, alert(html)
    m = re.search(r'<dt>Id</dt><dd class="mono">([0-9a-f-]{36})</dd>', html)
    assert m is not None
    return m.group(1), html


async def test_a_webhook_created_in_the_form_is_the_apis_document(
        browser: Browser, tenant: tuple[str, str], store: Store) -> None:
    sub_id, html = await create(browser, form())
    secret = re.search(r"<code>(whsec_[A-Za-z0-9+/=]+)</code>", html)
    assert secret is not None and "Shown this once" in html
    got = await (await browser.client.get(f"/v1/subscriptions/{sub_id}",
                                          headers=bearer(tenant[1]))).json()
    assert got["match"] == {
        "kinds": ["caiso.eea", "caiso.peak_forecast"], "min_severity": "warning",
        "regions": ["SCE-TAC", "Southern CA Region"], "programs": ["CPP", "BIP"],
        "thresholds": [{"kind": "caiso.peak_forecast", "area": "SCE-TAC", "day": "tomorrow",
                        "above": 23000.0, "clear_below": 22500.0, "below": None,
                        "clear_above": None, "severity": "warning"}]}
    assert got["transitions"] == ["issued", "ended"]
    assert got["quiet_hours"]["start"] == "22:00" and got["channel"]["url"].endswith("/capmon")
    async with store.connect() as conn:
        assert await sub_store.secret_of(conn, sub_id) == secret.group(1)
    # Shown once: the subscription's page does not show it again.
    again = await (await browser.get(f"/portal/subscriptions/{sub_id}")).text()
    assert secret.group(1) not in again and "Scheduling system" in again


def test_the_form_shows_a_document_and_gives_it_back_unchanged() -> None:
    spec = SubscriptionSpec.model_validate({
        "name": "Peak desk", "channel": {"type": "sms", "phone": "+14155552671"},
        "match": {"kinds": ["caiso.ra_outlook"], "min_severity": "watch",
                  "thresholds": [{"kind": "caiso.ra_outlook", "below": -500.5,
                                  "clear_above": 0, "severity": "critical"},
                                 {"kind": "caiso.demand", "above": 48000}]},
        "transitions": ["issued", "reminder"], "repeat_interval": "PT4H",
        "quiet_hours": {"timezone": "America/Denver", "start": "21:00", "end": "07:00",
                        "bypass_severity": "critical"},
        "heartbeat": {"at": "08:00"}, "ack_severity": "warning"})
    values = forms.values_of(spec)
    assert len(values["thresholds"]) == 2 + forms.SPARE_ROWS
    assert forms.spec_of(values) == spec


def test_a_voice_channel_round_trips_with_its_retries() -> None:
    spec = SubscriptionSpec.model_validate({
        "name": "Duty phone", "channel": {"type": "voice", "phone": "+14155552671",
                                          "retries": 4, "retry_interval": "PT3M"}})
    values = forms.values_of(spec)
    assert (values["channel_type"], values["phone"], values["call_retries"],
            values["call_retry_interval"]) == ("voice", "+14155552671", "4", "PT3M")
    assert forms.spec_of(values) == spec
    with pytest.raises(Problem) as refused:
        forms.spec_of({**values, "call_retries": "many"})
    assert refused.value.errors[0]["loc"][-1] == "retries"


async def test_refusals_show_the_apis_title_and_detail(browser: Browser) -> None:
    cases = [
        (form(url="http://hooks.cca.example/capmon"), 422, "Webhook URL refused",
         "channel.url: "),
        (form(url="https://intranet.cca.example/hook"), 422, "Webhook URL refused",
         "10.20.30.40"),
        (form(t0_level="lots"), 422, "Invalid request body",
         "threshold 1: above: Input should be a valid number"),
        (form(t0_clear="24000"), 422, "Invalid request body",
         "'clear_below' must not exceed 'above'"),
        ([*form(channel_type="sms"), ("phone", "+1 555")], 422, "Invalid request body",
         "channel.sms.phone"),
        ([(k, v) for k, v in form() if k != "transitions"], 422, "Invalid request body",
         "transitions: List should have at least 1 item"),
        (form(name="<script>alert(1)</script>", quiet_end=""), 422, "Invalid request body",
         "quiet_hours.end"),
    ]
    for fields, status, title, words in cases:
        resp = await browser.post("/portal/subscriptions/new", fields)
        html = await resp.text()
        assert resp.status == status, (title, words)
        shown = alert(html)
        assert shown.startswith(title) and words in shown, shown
        assert "Traceback" not in html and "<script>alert" not in html
    # What was typed is shown again, escaped, for correcting.
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in html


async def test_an_unconfigured_channel_is_refused(
        store: Store, clock: ManualClock, aiohttp_client: Any) -> None:
    rt = make_runtime(store, clock, channels=False)
    client: TestClient[Any, Any] = await aiohttp_client(make_app(rt))
    _tid, key = await new_tenant(client, "Desert Community Energy")
    b = Browser(client)
    await b.sign_in(key)
    resp = await b.post("/portal/subscriptions/new", [
        *form(channel_type="email"), ("address", "desk@dce.example")])
    assert resp.status == 422
    assert alert(await resp.text()).startswith(
        "Channel not configured the email channel is not configured: set "
        "CAPMON_API_LINK_SECRET")


async def test_a_recipients_opt_out_is_refused(browser: Browser, store: Store,
                                              clock: ManualClock) -> None:
    async with store.begin() as conn:
        await endpoints.record_opt_out(conn, "sms", "+14155552671", "sms STOP", clock.now())
    resp = await browser.post("/portal/subscriptions/new", [
        *form(channel_type="sms"), ("phone", "+1 415 555 2671")])
    assert resp.status == 409
    assert alert(await resp.text()).startswith("Recipient opted out")


async def test_edit_keeps_the_status_and_pause_resume_delete(
        browser: Browser, tenant: tuple[str, str]) -> None:
    sub_id, _ = await create(browser, form())
    page = f"/portal/subscriptions/{sub_id}"
    assert location(await browser.post(f"{page}/status", {"status": "paused"})) == \
        f"{page}?done=paused"
    html = await (await browser.get(f"{page}/edit")).text()
    before = await (await browser.client.get(f"/v1/subscriptions/{sub_id}",
                                             headers=bearer(tenant[1]))).json()
    # The edit form as the page fills it saves the same document.
    assert location(await browser.post(f"{page}/edit", [
        (k, v) for k, v in fields_of(html, f"{page}/edit") if k != "csrf"])) == \
        f"{page}?done=saved"
    after = await (await browser.client.get(f"/v1/subscriptions/{sub_id}",
                                            headers=bearer(tenant[1]))).json()
    assert {**after, "updated_at": None} == {**before, "updated_at": None}
    assert location(await browser.post(f"{page}/edit", form(name="Renamed"))) == \
        f"{page}?done=saved"
    got = await (await browser.client.get(f"/v1/subscriptions/{sub_id}",
                                          headers=bearer(tenant[1]))).json()
    assert got["name"] == "Renamed" and got["status"] == "paused"
    assert got["status_reason"] == "set by tenant"
    resp = await browser.post(f"{page}/edit", form(t0_direction="below"))
    assert resp.status == 422
    assert "'clear_above' must not be under 'below'" in alert(await resp.text())
    assert location(await browser.post(f"{page}/status", {"status": "active"})) == \
        f"{page}?done=active"
    resp = await browser.post(f"{page}/status", {"status": "gone"})
    assert resp.status == 422
    resp = await browser.post(f"{page}/delete", {})
    assert resp.status == 422 and "Not deleted" in alert(await resp.text())
    assert location(await browser.post(f"{page}/delete", {"confirm": "yes"})) == \
        "/portal/subscriptions?done=deleted"
    assert (await browser.get(page)).status == 404


async def test_an_opted_out_subscription_is_not_resumed(browser: Browser, store: Store,
                                                       clock: ManualClock) -> None:
    sub_id, _ = await create(browser, form())
    async with store.begin() as conn:
        await sub_store.set_status(conn, sub_id, "unsubscribed", clock.now(),
                                   reason="email one-click unsubscribe")
    resp = await browser.post(f"/portal/subscriptions/{sub_id}/status", {"status": "active"})
    assert resp.status == 409
    assert alert(await resp.text()).startswith("Recipient opted out")
    resp = await browser.post(f"/portal/subscriptions/{sub_id}/test")
    assert resp.status == 409 and "Subscription is unsubscribed" in alert(await resp.text())


async def test_a_test_and_its_attempts_in_the_log_then_replay(
        browser: Browser, runtime: Runtime, store: Store, clock: ManualClock) -> None:
    sub_id, _ = await create(browser, form())
    received = runtime.bus.subscribe([NOTIFICATIONS], group="t")
    where = location(await browser.post(f"/portal/subscriptions/{sub_id}/test"))
    key = where.removeprefix("/portal/notifications/").removesuffix("?done=test")
    msg = await received.get(timeout=5)
    assert msg is not None and msg.key == sub_id
    html = await (await browser.get(where)).text()
    assert "Test notification queued" in html and "pending" in html
    now = clock.now()
    async with store.begin() as conn:
        entry = await ledger.get(conn, key)
        assert entry is not None
        n = entry.notification()
        await ledger.claim(conn, [n], now, now + timedelta(seconds=60))
        await ledger.settle(conn, [Verdict.retry(
            key, now, AttemptRecord(1, now, "webhook", "retry", status_code=503,
                                    error="server: 503 Service Unavailable", latency_s=0.25),
            now + timedelta(seconds=30), "server: 503")])
    html = await (await browser.get(f"/portal/notifications/{key}")).text()
    assert "503" in html and "server: 503 Service Unavailable" in html and "0.250 s" in html
    assert "2022-09-06 10:00:30 PDT" in html  # the next retry, in Pacific time
    assert "Send again" in html  # a failed notification may be replayed
    log = await (await browser.get(f"/portal/notifications?subscription_id={sub_id}")).text()
    assert key in log and "server: 503" in log
    async with store.begin() as conn:
        await ledger.claim(conn, [n], now, now + timedelta(seconds=60))
        await ledger.settle(conn, [Verdict.dead(
            key, now, AttemptRecord(2, now, "webhook", "failed", status_code=410),
            "client: 410")])
    assert location(await browser.post(f"/portal/notifications/{key}/replay")) == \
        f"/portal/notifications/{key}?done=replayed"
    async with store.connect() as conn:
        entry = await ledger.get(conn, key)
    assert entry is not None and entry.state == ledger.State.PENDING
    resp = await browser.post(f"/portal/notifications/{key}/replay")
    assert resp.status == 409
    assert alert(await resp.text()).startswith("Notification already queued or in flight")


async def test_rotate_shows_the_new_secret_once(browser: Browser, store: Store) -> None:
    sub_id, html = await create(browser, form())
    old = re.search(r"<code>(whsec_[^<]+)</code>", html)
    resp = await browser.post(f"/portal/subscriptions/{sub_id}/rotate-secret",
                              {"overlap_s": "3600"})
    html = await resp.text()
    new = re.search(r"<code>(whsec_[^<]+)</code>", html)
    assert resp.status == 200 and old is not None and new is not None
    assert new.group(1) != old.group(1)
    assert "Until 2022-09-06 11:00:00 PDT" in re.sub(r"\s+", " ", html)
    async with store.connect() as conn:
        assert await sub_store.secret_of(conn, sub_id) == new.group(1)
    resp = await browser.post(f"/portal/subscriptions/{sub_id}/rotate-secret",
                              {"overlap_s": "9999999"})
    assert resp.status == 422 and "overlap_s" in alert(await resp.text())


async def test_another_tenants_ids_are_not_found(browser: Browser, client: TestClient[Any, Any],
                                                 store: Store, clock: ManualClock) -> None:
    _tid, other_key = await new_tenant(client, "Other CCA")
    resp = await client.post("/v1/subscriptions", headers=bearer(other_key), json={
        "name": "theirs", "channel": {"type": "webhook", "url": "https://hooks.cca.example/x"}})
    theirs = (await resp.json())["id"]
    queued = await (await client.post(f"/v1/subscriptions/{theirs}/test",
                                      headers=bearer(other_key))).json()
    page = f"/portal/subscriptions/{theirs}"
    for path in (page, f"{page}/edit", f"/portal/notifications/{queued['key']}"):
        assert (await browser.get(path)).status == 404, path
    for path, data in ((f"{page}/edit", form()), (f"{page}/status", [("status", "paused")]),
                       (f"{page}/delete", [("confirm", "yes")]), (f"{page}/test", []),
                       (f"{page}/rotate-secret", []),
                       (f"/portal/notifications/{queued['key']}/replay", [])):
        resp = await browser.post(path, data)
        assert resp.status == 404, path
        assert "Traceback" not in await resp.text()
    log = await (await browser.get(f"/portal/notifications?subscription_id={theirs}")).text()
    assert queued["key"] not in log
    listed = await (await browser.get("/portal/subscriptions")).text()
    assert "theirs" not in listed
    async with store.connect() as conn:
        sub = await sub_store.get(conn, theirs)
    assert sub is not None and sub.status == "active" and sub.spec.name == "theirs"


async def test_the_portal_is_not_in_the_api_description(client: TestClient[Any, Any],
                                                        tenant: tuple[str, str]) -> None:
    doc = await (await client.get("/openapi.json")).json()
    assert doc["paths"] and not [p for p in doc["paths"] if p.startswith("/portal")]
    for path in ("/portal", "/portal/"):
        assert location(await client.get(path, allow_redirects=False)) == "/portal/sign-in"
    await Browser(client).sign_in(tenant[1])
    for path in ("/portal", "/portal/"):
        resp = await client.get(path, allow_redirects=False)
        assert location(resp) == "/portal/subscriptions"
