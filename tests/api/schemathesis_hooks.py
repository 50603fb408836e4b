"""Loaded by `st run` (SCHEMATHESIS_HOOKS) in test_schemathesis.

A threshold's hysteresis level may not be on the wrong side of its alert level
(`clear_below` <= `above`, `clear_above` >= `below`): a comparison of two fields, which JSON
Schema cannot state, so the document says it in the threshold's description and the API
answers 422. Generated thresholds that break it get the level itself as their hysteresis
level (still schema-valid), so that `positive_data_acceptance` judges the rest of the body.
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


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    body = case.body
    match = body.get("match") if isinstance(body, dict) else None
    thresholds = match.get("thresholds") if isinstance(match, dict) else None
    if isinstance(thresholds, list):
        for threshold in thresholds:
            _fix(threshold)
    return case
