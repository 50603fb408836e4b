"""The subscription document (docs/decide.md), shared by the API, the CLI and decide.

These pydantic models validate what a tenant sends (`POST /v1/subscriptions`, `capmon
subscriptions import`) and generate its OpenAPI schema. Syntax is checked here (E.164 phone
numbers with `phonenumbers`, addresses with `email-validator`, URL shape, IANA time zones,
ISO 8601 durations); whether a webhook host resolves to a routable address needs the network
and the settings, so `monitor.netguard.check_url` runs after validation.
"""

from __future__ import annotations

import base64
import functools
import re
import secrets
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.events import Kind, Severity
from monitor.notifications import (
    AnyChannel,
    EmailChannel,
    SmsChannel,
    VoiceChannel,
    WebhookChannel,
)

SUB_TRANSITIONS = ("issued", "updated", "started", "ended", "cancelled", "reminder")
TransitionName = Literal["issued", "updated", "started", "ended", "cancelled", "reminder"]
DEFAULT_TRANSITIONS: tuple[TransitionName, ...] = (
    "issued", "updated", "started", "ended", "cancelled")
# "disabled" is set by deliver (410 Gone, an invalid phone, days of failures), with a reason;
# a tenant re-enables the endpoint by setting it active again.
SubStatus = Literal["active", "paused", "unsubscribed", "disabled"]
# Kinds whose revisions are numbers: they notify only through thresholds.
NUMERIC_KINDS = frozenset({Kind.CAISO_DEMAND, Kind.CAISO_PEAK_FORECAST, Kind.CAISO_RA_OUTLOOK,
                           Kind.CAISO_STATUS})
DEFAULT_TIMEZONE = "America/Los_Angeles"
MIN_REPEAT = timedelta(minutes=5)

# ASCII digits only (`\d` would take any script's), and the whole string (`$` would let a
# trailing newline through).
_DURATION = re.compile(
    "P(?:([0-9]{1,4})D)?(?:T(?:([0-9]{1,5})H)?(?:([0-9]{1,6})M)?(?:([0-9]{1,7})S)?)?")
HHMM_PATTERN = "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
# `repeat_interval` as the schema states it: `_DURATION`, not empty, and at least PT5M (a
# day or an hour of any count, 5 minutes or more, 300 seconds or more, or minutes and
# seconds that add up to 5 minutes).
_N = "[0-9]*[1-9][0-9]*"  # a count that is not zero
_AT_LEAST_S = {  # minutes (with leading zeros) -> seconds that make up the rest of PT5M
    "0*1": "0*(?:2[4-9][0-9]|[3-9][0-9]{2}|[1-9][0-9]{3,})",
    "0*2": "0*(?:1[89][0-9]|[2-9][0-9]{2}|[1-9][0-9]{3,})",
    "0*3": "0*(?:1[2-9][0-9]|[2-9][0-9]{2}|[1-9][0-9]{3,})",
    "0*4": "0*(?:[6-9][0-9]|[1-9][0-9]{2,})",
}
_FIVE_MINUTES = (
    f"P(?:{_N}D|(?:[0-9]+D)?T(?:{_N}H|(?:[0-9]+H)?(?:0*(?:[5-9]|[1-9][0-9]+)M"
    "|(?:[0-9]+M)?0*(?:[3-9][0-9]{2}|[1-9][0-9]{3,})S"
    + "".join(f"|{m}M{s}S" for m, s in _AT_LEAST_S.items()) + ")))")
REPEAT_PATTERN = f"^(?!.*T$)(?={_FIVE_MINUTES}){_DURATION.pattern}$"
# No control characters (CR, LF, NUL, DEL...) in anything a person names: they end up in
# email headers, SMS bodies and log lines.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=_PRINTABLE)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]


@functools.cache
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zone_pattern() -> str:
    """Every zone `_iana_zone` takes, as one alternation: a pattern, not an `enum`, so that a
    generator (schemathesis's coverage phase) does not try each of some 600 names in turn."""
    return "^(?:" + "|".join(z.replace("+", "\\+") for z in sorted(time_zones())) + ")$"


# The schema states what the validators below accept, so that a document a client generates
# from it is one capmon takes.
TimeZone = Annotated[str, Field(max_length=64, json_schema_extra=lambda schema: schema.update(
    pattern=time_zone_pattern(), description=schema.get("description", "IANA time zone")))]
HhMm = Annotated[str, Field(json_schema_extra={"pattern": HHMM_PATTERN})]


def parse_duration(text: str) -> timedelta:
    """ISO 8601 duration without years/months (`PT4H`, `P1DT12H`, `PT30M`)."""
    m = _DURATION.fullmatch(text)
    if m is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError("must be an ISO 8601 duration such as PT4H or P1D")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Threshold(_Model):
    """A level on a numeric signal, with hysteresis: alert at `above`, all clear below
    `clear_below` (or, for margins, alert at `below`, all clear above `clear_above`)."""

    # `_one_direction` in the schema (absent and null are the same: unset).
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["above"], "properties": {
            "above": {"type": "number"}, "below": {"type": "null"},
            "clear_above": {"type": "null"}}},
        {"required": ["below"], "properties": {
            "below": {"type": "number"}, "above": {"type": "null"},
            "clear_below": {"type": "null"}}}]})

    kind: Literal["caiso.peak_forecast", "caiso.demand", "caiso.ra_outlook"]
    area: Label | None = Field(default=None, description="TAC area, e.g. SCE-TAC; any if unset")
    day: Literal["today", "tomorrow"] | None = Field(
        default=None, description="trade date relative to the observation date (Pacific)")
    above: float | None = Field(default=None, ge=-1e7, le=1e7)
    clear_below: float | None = Field(default=None, ge=-1e7, le=1e7,
                                      description="with `above`; not more than `above`")
    below: float | None = Field(default=None, ge=-1e7, le=1e7)
    clear_above: float | None = Field(default=None, ge=-1e7, le=1e7,
                                      description="with `below`; not less than `below`")
    severity: Severity = Severity.WARNING

    @model_validator(mode="after")
    def _one_direction(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        if self.above is not None:
            if self.clear_above is not None:
                raise ValueError("'clear_above' goes with 'below', not 'above'")
            if self.clear_below is not None and self.clear_below > self.above:
                raise ValueError("'clear_below' must not exceed 'above'")
        if self.below is not None:
            if self.clear_below is not None:
                raise ValueError("'clear_below' goes with 'above', not 'below'")
            if self.clear_above is not None and self.clear_above < self.below:
                raise ValueError("'clear_above' must not be under 'below'")
        return self

    def breached(self, value: float) -> bool:
        return value >= self.above if self.above is not None else value <= (self.below or 0.0)

    def cleared(self, value: float) -> bool:
        if self.above is not None:
            return value < (self.clear_below if self.clear_below is not None else self.above)
        level = self.clear_above if self.clear_above is not None else self.below
        return value > (level or 0.0)

    def matches_day(self, trade_date: date, observed: date) -> bool:
        if self.day is None:
            return True
        return trade_date == observed + timedelta(days=1 if self.day == "tomorrow" else 0)


class Match(_Model):
    kinds: list[Kind] = Field(default_factory=list, max_length=20,
                              description="empty: every kind that is not numeric")
    min_severity: Severity = Severity.INFO
    regions: list[Label] = Field(default_factory=list, max_length=500,
                                 description="CAISO regions, TAC areas, SubLAPs, ZIP codes")
    programs: list[Label] = Field(default_factory=list, max_length=50,
                                  description="SCE DR programs (CPP, BIP, ...); empty: any")
    thresholds: list[Threshold] = Field(default_factory=list, max_length=50)


class WebhookTarget(_Model):
    type: Literal["webhook"]
    url: str = Field(min_length=8, max_length=2048)

    @field_validator("url")
    @classmethod
    def _url_shape(cls, v: str) -> str:
        try:
            parts = urlsplit(v)
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"malformed URL: {exc}") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute https:// URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials")
        if any(c.isspace() for c in v):
            raise ValueError("must not contain whitespace")
        return v


def e164(v: str) -> str:
    """A phone number in E.164 form, or ValueError saying why not."""
    if not v.startswith("+"):
        raise ValueError("must be in E.164 form, starting with +")
    try:
        number = phonenumbers.parse(v, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


Phone = Annotated[str, Field(min_length=2, max_length=32, description="E.164, e.g. +14155550100")]


class SmsTarget(_Model):
    type: Literal["sms"]
    phone: Phone

    @field_validator("phone")
    @classmethod
    def _e164(cls, v: str) -> str:
        return e164(v)


MIN_CALL_RETRY = timedelta(minutes=1)


class VoiceTarget(_Model):
    """A phone call that reads the alert (and takes 1 to acknowledge, 9 to stop calls)."""

    type: Literal["voice"]
    phone: Phone
    retries: int = Field(default=2, ge=0, le=5,
                         description="more calls after a busy, unanswered or failed one")
    retry_interval: Annotated[str, Field(max_length=32)] = Field(
        default="PT2M", examples=["PT2M"],
        description="ISO 8601 duration between those calls, at least PT1M")

    @field_validator("phone")
    @classmethod
    def _e164(cls, v: str) -> str:
        return e164(v)

    @field_validator("retry_interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        if parse_duration(v) < MIN_CALL_RETRY:
            raise ValueError("must be at least PT1M")
        return v


class EmailTarget(_Model):
    type: Literal["email"]
    address: str = Field(min_length=3, max_length=320)

    @field_validator("address")
    @classmethod
    def _email(cls, v: str) -> str:
        try:
            return validate_email(v, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from None


Target = Annotated[WebhookTarget | SmsTarget | EmailTarget | VoiceTarget,
                   Field(discriminator="type")]


def _iana_zone(v: str) -> str:
    if v not in time_zones():
        raise ValueError(f"unknown IANA time zone {v!r}")
    return v


def _hhmm(v: str) -> str:
    if not re.fullmatch(HHMM_PATTERN, v):
        raise ValueError("must be HH:MM (24-hour)")
    return v


class QuietHours(_Model):
    timezone: TimeZone = DEFAULT_TIMEZONE
    start: HhMm = Field(description="HH:MM local time", examples=["22:00"])
    end: HhMm = Field(description="HH:MM local time, exclusive", examples=["06:00"])
    bypass_severity: Severity = Severity.EMERGENCY

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _iana_zone(v)

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        return _hhmm(v)

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def is_quiet(self, at: datetime) -> bool:
        local = at.astimezone(self.zone).time()
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        if start == end:
            return False
        if start < end:
            return start <= local < end
        return local >= start or local < end


class Heartbeat(_Model):
    """A daily "capmon is watching: 7 of 7 sources current" at `at` local time, so that
    silence itself means something: no heartbeat, no capmon."""

    at: HhMm = Field(description="HH:MM local time", examples=["08:00"])
    timezone: TimeZone = Field(default=DEFAULT_TIMEZONE,
                               description="IANA zone; default the quiet hours' zone, else "
                                           "America/Los_Angeles")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _iana_zone(v)

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        return _hhmm(v)

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def times_between(self, t0: datetime, t1: datetime) -> list[datetime]:
        """The instants in (t0, t1] at which it is `at` on the local clock, one per local
        day (a time the DST change skips or repeats falls as zoneinfo places it)."""
        zone, at = self.zone, time.fromisoformat(self.at)
        day = t0.astimezone(zone).date()
        out = []
        while (when := datetime.combine(day, at, tzinfo=zone)) <= t1:
            if when > t0:
                out.append(when)
            day += timedelta(days=1)
        return out


class SubscriptionSpec(_Model):
    """What a tenant sends: the subscription JSON that docs/decide.md describes."""

    # `_reminder_needs_interval` in the schema.
    model_config = ConfigDict(json_schema_extra={
        "if": {"required": ["transitions"],
               "properties": {"transitions": {"contains": {"const": "reminder"}}}},
        "then": {"required": ["repeat_interval"],
                 "properties": {"repeat_interval": {"type": "string"}}}})

    name: Name
    match: Match = Field(default_factory=Match)
    transitions: list[TransitionName] = Field(
        default_factory=lambda: list(DEFAULT_TRANSITIONS),
        min_length=1, max_length=6)
    repeat_interval: Annotated[str, Field(max_length=32, json_schema_extra={
        "pattern": REPEAT_PATTERN})] | None = Field(
        default=None, examples=["PT4H"],
        description="ISO 8601 duration of days, hours, minutes and seconds, at least PT5M")
    channel: Target
    quiet_hours: QuietHours | None = None
    ack_severity: Severity = Field(
        default=Severity.EMERGENCY,
        description="notifications at or above this severity can be acknowledged")
    heartbeat: Heartbeat | None = Field(
        default=None, description='daily "capmon is watching" message, e.g. {"at": "08:00"}')
    status: SubStatus = "active"

    @model_validator(mode="before")
    @classmethod
    def _heartbeat_zone(cls, data: Any) -> Any:
        # The subscriber's zone: a heartbeat without one takes the quiet hours'.
        if isinstance(data, dict) and isinstance(data.get("heartbeat"), dict):
            beat, quiet = data["heartbeat"], data.get("quiet_hours")
            if "timezone" not in beat and isinstance(quiet, dict) and "timezone" in quiet:
                data = {**data, "heartbeat": {**beat, "timezone": quiet["timezone"]}}
        return data

    @field_validator("repeat_interval")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None and parse_duration(v) < MIN_REPEAT:
            raise ValueError("must be at least PT5M")
        return v

    @field_validator("transitions")
    @classmethod
    def _unique(cls, v: list[TransitionName]) -> list[TransitionName]:
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _reminder_needs_interval(self) -> Self:
        if "reminder" in self.transitions and self.repeat_interval is None:
            raise ValueError("the 'reminder' transition needs a repeat_interval")
        return self

    @property
    def repeat(self) -> timedelta | None:
        return None if self.repeat_interval is None else parse_duration(self.repeat_interval)

    def notification_channel(self) -> AnyChannel:
        ch = self.channel
        if isinstance(ch, WebhookTarget):
            return WebhookChannel(url=ch.url)
        if isinstance(ch, SmsTarget):
            return SmsChannel(phone=ch.phone)
        if isinstance(ch, VoiceTarget):
            return VoiceChannel(phone=ch.phone, retries=ch.retries, retry_interval_s=int(
                parse_duration(ch.retry_interval).total_seconds()))
        return EmailChannel(address=ch.address)

    def target(self) -> str:
        ch = self.channel
        if isinstance(ch, WebhookTarget):
            return ch.url
        return ch.phone if isinstance(ch, SmsTarget | VoiceTarget) else ch.address


class StatusPatch(_Model):
    status: SubStatus


class Subscription(SubscriptionSpec):
    """What the API returns: the spec plus identity, timestamps and (once) the secret."""

    id: str
    tenant_id: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    status_reason: str | None = None
    secret: str | None = Field(default=None, description="webhook signing secret, shown once")


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def validation_problems(exc: ValidationError, prefix: str) -> list[str]:
    """One line per error of a subscription document, `<prefix><field path>: <message>`
    (the CLI's and the demo's import errors)."""
    return [f"{prefix}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
