"""Protecting receivers and providers: token buckets and per-endpoint circuit breakers.

All timing comes from the injected clock's monotonic seconds. `Limits.gate` answers "may this
endpoint be sent to now, and if not, in how many seconds?"; the pipeline waits briefly
in-process or defers the attempt in the store, so a throttled endpoint never blocks others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.clock import Clock
from monitor.config import DeliverSettings
from monitor.metrics import CIRCUIT_OPEN


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 if one is now); takes nothing."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


@dataclass
class CircuitBreaker:
    """closed -> (threshold consecutive failures) -> open -> (cooldown) -> half-open: one probe.

    A failed probe reopens with a doubled cooldown, up to a cap; a success closes it.
    """

    threshold: int
    cooldown_s: float
    max_cooldown_s: float
    failures: int = 0
    open_until: float | None = None
    current_cooldown: float = 0.0
    probing: bool = False
    # A receiver's Retry-After pauses the endpoint without opening the circuit.
    paused_until: float = 0.0
    opened: bool = field(default=False)

    def wait_time(self, now: float) -> float:
        wait = max(0.0, self.paused_until - now)
        if self.open_until is not None:
            if now < self.open_until:
                return max(wait, self.open_until - now)
            if self.probing:  # one probe at a time while half-open
                return max(wait, min(self.cooldown_s, 1.0))
        return wait

    def before_send(self, now: float) -> None:
        if self.open_until is not None and now >= self.open_until:
            self.probing = True

    def success(self) -> bool:
        """Record a success; True if that closed an open circuit."""
        was_open = self.opened
        self.failures, self.open_until, self.probing, self.opened = 0, None, False, False
        self.current_cooldown = 0.0
        return was_open

    def failure(self, now: float) -> bool:
        """Record a failure; True if that opened the circuit (from closed)."""
        self.failures += 1
        if self.probing or (self.open_until is None and self.failures >= self.threshold):
            self.current_cooldown = (min(self.current_cooldown * 2, self.max_cooldown_s)
                                     if self.current_cooldown else self.cooldown_s)
            self.open_until = now + self.current_cooldown
            self.probing = False
            newly = not self.opened
            self.opened = True
            return newly
        return False

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)


class Limits:
    """Per-channel buckets, per-endpoint buckets (webhooks) and per-endpoint breakers."""

    _PRUNE_AT = 20_000

    def __init__(self, settings: DeliverSettings, clock: Clock) -> None:
        self._s = settings
        self._clock = clock
        now = clock.monotonic()
        self._channel = {
            "webhook": TokenBucket(settings.webhook_rate_per_s,
                                   max(1.0, settings.webhook_rate_per_s), now),
            "sms": TokenBucket(settings.sms_rate_per_s, max(1.0, settings.sms_rate_per_s), now),
            "email": TokenBucket(settings.email_rate_per_s,
                                 max(1.0, settings.email_rate_per_s), now),
            "voice": TokenBucket(settings.voice_rate_per_s,
                                 max(1.0, settings.voice_rate_per_s), now),
        }
        self._endpoint: dict[str, TokenBucket] = {}
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, endpoint: str) -> CircuitBreaker:
        b = self._breakers.get(endpoint)
        if b is None:
            b = CircuitBreaker(self._s.circuit_failure_threshold, self._s.circuit_cooldown_s,
                               self._s.circuit_max_cooldown_s)
            self._breakers[endpoint] = b
        return b

    def _bucket(self, endpoint: str, now: float) -> TokenBucket:
        b = self._endpoint.get(endpoint)
        if b is None:
            if len(self._endpoint) >= self._PRUNE_AT:
                self._prune(now)
            b = TokenBucket(self._s.endpoint_rate_per_s, self._s.endpoint_burst, now)
            self._endpoint[endpoint] = b
        return b

    def gate(self, channel: str, endpoint: str) -> tuple[float, bool]:
        """(0, _) with a token taken if the send may go now; else (seconds to wait, whether
        that wait is only a rate limit, short enough to sit out in-process). An open circuit
        or a receiver's Retry-After is never waited out in-process: it defers in the store."""
        now = self._clock.monotonic()
        breaker = self.breaker(endpoint)
        bucket = self._bucket(endpoint, now)
        chan = self._channel.get(channel)
        blocked = breaker.wait_time(now)
        if blocked > 0:
            return blocked, False
        wait = max(bucket.wait_time(now), chan.wait_time(now) if chan else 0.0)
        if wait > 0:
            return wait, True
        breaker.before_send(now)
        bucket.take(now)
        if chan is not None:
            chan.take(now)
        return 0.0, True

    def record(self, channel: str, endpoint: str, *, ok: bool, counts: bool = True,
               retry_after: float | None = None) -> None:
        """Feed an outcome back: successes close, failures open; Retry-After pauses."""
        now = self._clock.monotonic()
        breaker = self.breaker(endpoint)
        if retry_after is not None and retry_after > 0:
            breaker.pause(now + retry_after)
        if ok:
            if breaker.success():
                CIRCUIT_OPEN.labels(channel=channel).dec()
        elif counts and breaker.failure(now):
            CIRCUIT_OPEN.labels(channel=channel).inc()

    def _prune(self, now: float) -> None:
        for key in [k for k, b in self._endpoint.items() if b.full(now)]:
            del self._endpoint[key]
        for key in [k for k, b in self._breakers.items()
                    if not b.opened and b.failures == 0 and b.paused_until <= now]:
            del self._breakers[key]
