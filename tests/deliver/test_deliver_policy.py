"""The pure parts of delivery policy: the retry schedule, the SSRF guard, token
buckets, the circuit breaker, unsubscribe tokens and Twilio's error-code table."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import SecretStr

from consumers.deliver.limits import CircuitBreaker, TokenBucket
from consumers.notifiers.sms import SmsConfig, SmsNotifier
from consumers.notifiers.webhook import WebhookConfig, WebhookNotifier, classify
from monitor.clock import ManualClock
from monitor.config import WebhookSettings
from monitor.delivery import MAX_ATTEMPTS, RETRY_SCHEDULE_S, retry_delay, twilio_code
from monitor.links import (
    UNSUBSCRIBE_TOKEN_DAYS,
    TokenCheck,
    check_unsubscribe_token,
    unsubscribe_token,
)
from monitor.netguard import ForbiddenAddress, GuardedResolver, UnsafeUrlError, check_url_syntax
from monitor.store.endpoints import Endpoint

NOW = datetime(2022, 9, 6, 17, 26, tzinfo=UTC)


def test_schedule_is_svix_with_bounded_jitter_then_exhausted() -> None:
    assert RETRY_SCHEDULE_S == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert MAX_ATTEMPTS == 8
    rng = random.Random(3)
    for made, base in enumerate(RETRY_SCHEDULE_S, start=1):
        delays = [retry_delay(made, rng=rng) for _ in range(200)]
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len({round(d or 0, 6) for d in delays}) > 100  # actually jittered
    assert retry_delay(8) is None


def test_retry_after_replaces_the_delay_within_a_cap() -> None:
    assert retry_delay(1, retry_after=120) == 120
    assert retry_delay(1, retry_after=10 ** 9, max_retry_after_s=3600) == 3600
    assert retry_delay(8, retry_after=5) is None  # the budget still ends


@pytest.mark.parametrize(("status", "retriable", "reason"), [
    (200, False, "ok"), (204, False, "ok"), (301, True, "redirect"), (400, True, "client"),
    (401, True, "auth"), (404, True, "client"), (410, False, "gone"), (429, True, "rate_limited"),
    (500, True, "server"), (502, True, "server"), (503, True, "server"), (504, True, "server"),
])
def test_http_verdicts(status: int, retriable: bool, reason: str) -> None:
    o = classify(status, {"Retry-After": "9"}, NOW)
    assert (o.retriable, o.reason) == (retriable, reason)
    assert o.retry_after == (9.0 if status in (429, 502, 503, 504) else None)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "https://10.0.0.8/x", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/x", "https://[::ffff:192.168.1.1]/x", "https://100.64.0.1/x",
    "ftp://example.com/x", "http://example.com/x", "https:///x",
])
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        check_url_syntax(url, WebhookSettings())


def test_check_url_admits_public_https_and_listed_hosts() -> None:
    check_url_syntax("https://8.8.8.8/hook", WebhookSettings())
    # names are checked by the resolver
    check_url_syntax("https://hooks.cca.example/capmon", WebhookSettings())
    check_url_syntax("http://127.0.0.1:8080/x", WebhookSettings(allow_hosts=("127.0.0.1",)))


class StaticResolver(AbstractResolver):
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [{"hostname": host, "host": a, "port": port, "family": family, "proto": 0,
                 "flags": 0} for a in self.addresses]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_names_that_rebind_to_private_addresses() -> None:
    public = GuardedResolver(WebhookSettings(), inner=StaticResolver(["93.184.216.34"]))
    assert (await public.resolve("hooks.example", 443))[0]["host"] == "93.184.216.34"
    mixed = GuardedResolver(WebhookSettings(),
                            inner=StaticResolver(["93.184.216.34", "10.1.2.3"]))
    with pytest.raises(ForbiddenAddress):
        await mixed.resolve("rebind.example", 443)
    allowed = GuardedResolver(WebhookSettings(allow_hosts=("rebind.example",)),
                              inner=StaticResolver(["10.1.2.3"]))
    assert await allowed.resolve("rebind.example", 443)


def test_token_bucket() -> None:
    b = TokenBucket(rate_per_s=2, burst=2, now=0.0)
    assert b.wait_time(0.0) == 0
    b.take(0.0)
    b.take(0.0)
    assert b.wait_time(0.0) == pytest.approx(0.5)
    assert b.wait_time(0.5) == 0


def test_circuit_breaker_opens_probes_and_backs_off() -> None:
    cb = CircuitBreaker(threshold=3, cooldown_s=10, max_cooldown_s=25)
    assert not cb.failure(0) and not cb.failure(0)
    assert cb.failure(0)  # third failure opens it
    assert cb.wait_time(5) == pytest.approx(5)
    assert cb.wait_time(10) == 0
    cb.before_send(10)  # the half-open probe
    assert cb.wait_time(10) > 0  # others wait for its verdict
    assert not cb.failure(10)  # a failed probe reopens (already open: not "newly")
    assert cb.wait_time(10) == pytest.approx(20)  # cooldown doubled
    cb.before_send(30)
    cb.failure(30)
    assert cb.wait_time(30) == pytest.approx(25)  # capped
    cb.before_send(55)
    assert cb.success()
    assert cb.wait_time(55) == 0


def test_unsubscribe_tokens_are_bound_to_secret_subscription_and_address() -> None:
    secret = SecretStr("server-secret-1")
    now = datetime(2022, 9, 6, 17, 26, tzinfo=UTC)
    token = unsubscribe_token(secret, "sub-1", "desk@cca.example", now)

    def check(token: str, address: str = "desk@cca.example",
              key: SecretStr = secret) -> TokenCheck:
        return check_unsubscribe_token(key, token, address, now)

    assert check(token) is TokenCheck.VALID
    assert check(token, "Desk@CCA.example") is TokenCheck.VALID, "addresses by case"
    assert check(token, "new-desk@cca.example") is TokenCheck.INVALID
    assert check(token, key=SecretStr("server-secret-2")) is TokenCheck.INVALID
    assert check("sub-2." + token.split(".", 1)[1]) is TokenCheck.INVALID
    assert check("sub-1") is TokenCheck.INVALID
    day, mac = token.split(".")[1:]
    assert check(f"sub-1.{int(day) + 300}.{mac}") is TokenCheck.INVALID, "the day is signed"


def test_unsubscribe_tokens_expire_after_a_generous_while() -> None:
    secret = SecretStr("server-secret-1")
    sent = datetime(2022, 9, 6, 17, 26, tzinfo=UTC)
    token = unsubscribe_token(secret, "sub-1", "desk@cca.example", sent)
    late = sent + timedelta(days=UNSUBSCRIBE_TOKEN_DAYS)
    assert UNSUBSCRIBE_TOKEN_DAYS >= 365
    assert check_unsubscribe_token(secret, token, "desk@cca.example", late) is TokenCheck.VALID
    assert check_unsubscribe_token(secret, token, "desk@cca.example",
                                   late + timedelta(days=2)) is TokenCheck.EXPIRED
    # Expired or not, a token of another address is not genuine.
    assert check_unsubscribe_token(secret, token, "new@cca.example",
                                   late + timedelta(days=2)) is TokenCheck.INVALID


@pytest.mark.parametrize(("code", "status", "retriable", "contact"), [
    (21211, 400, False, "invalid_contact"), (21610, 400, False, "unsubscribe"),
    (21614, 400, False, "invalid_contact"), (30004, None, False, "invalid_contact"),
    (30005, None, False, "invalid_contact"), (30006, None, False, "invalid_contact"),
    (20429, 429, True, ""), (None, 429, True, ""), (30003, None, True, ""),
    (30008, None, True, ""), (None, 503, True, ""), (99999, 400, False, ""),
])
def test_twilio_code_table(code: int | None, status: int | None, retriable: bool,
                           contact: str) -> None:
    meaning = twilio_code(code, status)
    assert (meaning.retriable, meaning.contact) == (retriable, contact)


async def test_only_email_carries_a_disabled_endpoint_notice() -> None:
    """An admin contact is a mail address: the webhook and SMS channels say they cannot."""
    sms = SmsNotifier(SmsConfig(account_sid="AC" + "1" * 32, auth_token=SecretStr("t"),
                                public_url="https://capmon.example",
                                messaging_service_sid="MG" + "2" * 32))
    webhook = WebhookNotifier(WebhookConfig(), ManualClock(NOW))
    ep = Endpoint(subscription_id="s", tenant_id="t", name="hook", channel_type="webhook",
                  target="https://hooks.cca.example/x", secrets=(), status="disabled",
                  status_reason=None)
    for notifier in (sms, webhook):
        assert await notifier.send_endpoint_disabled("ops@cca.example", ep, "gone") is None
