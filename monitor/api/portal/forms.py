"""The subscription form: HTML form fields to the API's `SubscriptionSpec` and back.

The fields cover the whole document, so editing a subscription in the portal keeps what it
does not show differently (thresholds, quiet hours, heartbeat). What the form sends is built
into the document's JSON shape and validated by the same model as `POST /v1/subscriptions`,
so the portal accepts and refuses what the API does, with the API's messages. A field left
blank is left out of the document (the model's default applies).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping
from pydantic import ValidationError

from monitor.api.problems import Problem, invalid_body
from monitor.events import Kind, Severity
from monitor.subscriptions import (
    DEFAULT_TRANSITIONS,
    SUB_TRANSITIONS,
    SmsTarget,
    SubscriptionSpec,
    VoiceTarget,
    WebhookTarget,
)

KINDS = tuple(k.value for k in Kind)
SEVERITIES = tuple(s.value for s in Severity)
TRANSITIONS = SUB_TRANSITIONS
THRESHOLD_KINDS = ("caiso.peak_forecast", "caiso.demand", "caiso.ra_outlook")
# Empty threshold rows offered below the subscription's own (the form has no script to add
# rows): save, and two more appear.
SPARE_ROWS = 2
MAX_ROWS = 50 + SPARE_ROWS  # a document holds at most 50 thresholds
_ROW_FIELDS = ("kind", "area", "day", "direction", "level", "clear", "severity")

# What a form holds: one string per field, a list for the checkboxes, one dict per row.
FormValues = dict[str, Any]


def blank() -> FormValues:
    return _with_spare_rows({
        "name": "", "channel_type": "webhook", "url": "", "phone": "", "address": "",
        "call_retries": "", "call_retry_interval": "",
        "kinds": [], "min_severity": Severity.INFO.value, "regions": "", "programs": "",
        "transitions": list(DEFAULT_TRANSITIONS), "repeat_interval": "",
        "quiet_start": "", "quiet_end": "", "quiet_timezone": "",
        "quiet_bypass": Severity.EMERGENCY.value, "heartbeat_at": "", "heartbeat_timezone": "",
        "ack_severity": Severity.EMERGENCY.value, "thresholds": []})


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() else repr(value)


def values_of(spec: SubscriptionSpec) -> FormValues:
    """The form showing this document."""
    ch, m = spec.channel, spec.match
    rows = []
    for t in m.thresholds:
        above = t.above is not None
        rows.append({"kind": t.kind, "area": t.area or "", "day": t.day or "",
                     "direction": "above" if above else "below",
                     "level": _number(t.above if above else t.below),
                     "clear": _number(t.clear_below if above else t.clear_above),
                     "severity": t.severity.value})
    quiet, beat = spec.quiet_hours, spec.heartbeat
    return _with_spare_rows({
        "name": spec.name, "channel_type": ch.type,
        "url": ch.url if isinstance(ch, WebhookTarget) else "",
        "phone": ch.phone if isinstance(ch, SmsTarget | VoiceTarget) else "",
        "call_retries": str(ch.retries) if isinstance(ch, VoiceTarget) else "",
        "call_retry_interval": ch.retry_interval if isinstance(ch, VoiceTarget) else "",
        "address": ch.address if ch.type == "email" else "",
        "kinds": [k.value for k in m.kinds], "min_severity": m.min_severity.value,
        "regions": "\n".join(m.regions), "programs": ", ".join(m.programs),
        "transitions": list(spec.transitions), "repeat_interval": spec.repeat_interval or "",
        "quiet_start": quiet.start if quiet else "", "quiet_end": quiet.end if quiet else "",
        "quiet_timezone": quiet.timezone if quiet else "",
        "quiet_bypass": (quiet.bypass_severity if quiet else Severity.EMERGENCY).value,
        "heartbeat_at": beat.at if beat else "",
        "heartbeat_timezone": beat.timezone if beat else "",
        "ack_severity": spec.ack_severity.value, "thresholds": rows})


def _with_spare_rows(values: FormValues) -> FormValues:
    blank_row = {"kind": "", "area": "", "day": "", "direction": "above", "level": "",
                 "clear": "", "severity": Severity.WARNING.value}
    values["thresholds"] = [*values["thresholds"], *([blank_row] * SPARE_ROWS)]
    return values


def _text(form: MultiMapping[Any], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def split_list(text: str) -> list[str]:
    """A text field's list: comma- or line-separated, blanks dropped."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def read(form: MultiMapping[Any]) -> FormValues:
    """The values a form sent, as the form shows them again (blank threshold rows dropped,
    so a row's number is its place in the document)."""
    values: FormValues = {name: _text(form, name) for name in blank() if name not in (
        "kinds", "transitions", "thresholds")}
    values["kinds"] = [v for v in form.getall("kinds", []) if isinstance(v, str)]
    values["transitions"] = [v for v in form.getall("transitions", []) if isinstance(v, str)]
    rows = []
    count = _text(form, "threshold_rows")
    for i in range(min(int(count), MAX_ROWS) if count.isascii() and count.isdigit() else 0):
        row = {f: _text(form, f"t{i}_{f}") for f in _ROW_FIELDS}
        if row["kind"] or row["level"] or row["clear"] or row["area"]:
            rows.append(row)
    values["thresholds"] = rows
    return _with_spare_rows(values)


def _threshold(row: Mapping[str, str]) -> dict[str, Any]:
    above = row["direction"] != "below"
    out: dict[str, Any] = {"kind": row["kind"], "severity": row["severity"] or "warning",
                           "above" if above else "below": row["level"] or None}
    if row["area"]:
        out["area"] = row["area"]
    if row["day"]:
        out["day"] = row["day"]
    if row["clear"]:
        out["clear_below" if above else "clear_above"] = row["clear"]
    return out


def document(values: FormValues) -> dict[str, Any]:
    """The subscription document these form values say (before validation)."""
    v = values
    kind = v["channel_type"]
    field = {"webhook": "url", "sms": "phone", "voice": "phone", "email": "address"}.get(kind)
    channel: dict[str, Any] = {"type": kind}
    if field is not None:
        channel[field] = v[field]
    if kind == "voice":
        if v["call_retries"]:
            retries = v["call_retries"]
            # Not a count: the model refuses the text, with its message.
            channel["retries"] = int(retries) if retries.isascii() and retries.isdigit() \
                else retries
        if v["call_retry_interval"]:
            channel["retry_interval"] = v["call_retry_interval"]
    rows = [r for r in v["thresholds"] if r["kind"] or r["level"] or r["clear"] or r["area"]]
    doc: dict[str, Any] = {
        "name": v["name"], "channel": channel, "transitions": v["transitions"],
        "match": {"kinds": v["kinds"], "regions": split_list(v["regions"]),
                  "programs": split_list(v["programs"]),
                  "thresholds": [_threshold(r) for r in rows]}}
    if v["min_severity"]:
        doc["match"]["min_severity"] = v["min_severity"]
    if v["repeat_interval"]:
        doc["repeat_interval"] = v["repeat_interval"]
    if v["ack_severity"]:
        doc["ack_severity"] = v["ack_severity"]
    if v["quiet_start"] or v["quiet_end"]:
        quiet = {"start": v["quiet_start"], "end": v["quiet_end"],
                 "bypass_severity": v["quiet_bypass"] or "emergency"}
        if v["quiet_timezone"]:
            quiet["timezone"] = v["quiet_timezone"]
        doc["quiet_hours"] = quiet
    if v["heartbeat_at"]:
        beat = {"at": v["heartbeat_at"]}
        if v["heartbeat_timezone"]:
            beat["timezone"] = v["heartbeat_timezone"]
        doc["heartbeat"] = beat
    return doc


def spec_of(values: FormValues) -> SubscriptionSpec:
    """Validate as the API does; a document it refuses raises its 422 problem."""
    try:
        return SubscriptionSpec.model_validate(document(values))
    except ValidationError as exc:
        raise invalid_body(exc) from None


def where(loc: list[Any]) -> str:
    """An error's place in words a person finds on the form (`threshold 2: above`)."""
    if loc[:2] == ["match", "thresholds"] and len(loc) > 2 and isinstance(loc[2], int):
        rest = " ".join(str(p) for p in loc[3:])
        return f"threshold {loc[2] + 1}" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "document"


def problem_lines(problem: Problem) -> list[str]:
    return [f"{where(list(e.get('loc', [])))}: {e.get('msg', '')}" for e in problem.errors]
