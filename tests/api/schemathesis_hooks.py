"""Loaded by `st run` (SCHEMATHESIS_HOOKS) in test_schemathesis.

A threshold's hysteresis level may not be on the wrong side of its alert level
(`clear_below` <= `above`, `clear_above` >= `below`): a comparison of two fields, which JSON
Schema cannot state, so the document says it in the threshold's description and the API
answers 422. Generated thresholds that break it get the level itself as their hysteresis
level (still schema-valid), so that `positive_data_acceptance` judges the rest of the body.

A silence is the same: its end after its start and after now, `max_severity` not below
`min_severity`, its subscriptions the tenant's own, and at least one matcher that narrows it
are comparisons or lookups the schema cannot state (the descriptions say them). Generated
silences get a far end, ordered severities, no subscription ids, and a kind if nothing else
narrows them.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _fix(threshold: Any) -> None:
    if not isinstance(threshold, dict):
        return
    for level, clear, wrong in (("above", "clear_below", float.__gt__),
                                ("below", "clear_above", float.__lt__)):
        at, back = threshold.get(level), threshold.get(clear)
        if (isinstance(at, int | float) and isinstance(back, int | float)
                and not isinstance(at, bool) and not isinstance(back, bool)
                and wrong(float(back), float(at))):
            threshold[clear] = at


_ORDER = ("info", "advisory", "watch", "warning", "emergency", "critical")
_NARROWING = ("kinds", "condition_ids", "regions", "programs")


def _fix_silence(body: dict[str, Any], match: dict[str, Any]) -> None:
    body["ends_at"] = "2099-01-01T00:00:00Z"
    if isinstance(body.get("starts_at"), str):
        body["starts_at"] = "2098-01-01T00:00:00Z"
    match.pop("subscription_ids", None)
    low, high = match.get("min_severity", "info"), match.get("max_severity", "critical")
    if low in _ORDER and high in _ORDER and _ORDER.index(high) < _ORDER.index(low):
        match["max_severity"] = low
    narrowed = any(match.get(k) for k in _NARROWING) or low != "info" or high != "critical"
    if not narrowed:
        match["kinds"] = ["caiso.flex_alert"]


ESCALATION_SUBSCRIPTIONS = tuple(f"00000000-0000-4000-8000-{n:012d}" for n in range(10))


def _fix_policy(steps: list[Any]) -> None:
    for n, step in enumerate(steps[:len(ESCALATION_SUBSCRIPTIONS)]):
        if not isinstance(step, dict):
            continue
        step["subscriptions"] = [ESCALATION_SUBSCRIPTIONS[n]]
        if n == 0:
            step.pop("after", None)
        else:
            step["after"] = "PT10M"


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    body = case.body
    match = body.get("match") if isinstance(body, dict) else None
    if isinstance(match, dict) and "ends_at" in body:
        _fix_silence(body, match)
    steps = body.get("steps") if isinstance(body, dict) else None
    if isinstance(steps, list):
        _fix_policy(steps)
    thresholds = match.get("thresholds") if isinstance(match, dict) else None
    if isinstance(thresholds, list):
        for threshold in thresholds:
            _fix(threshold)
    return case
