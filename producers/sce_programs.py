"""SCE's demand-response programs: site codes, names, and how much each matters.

The site names programs by internal codes (`SAI` is Critical Peak Pricing, `API` is AP-I) in
the JSON API, by long names in the HTML panel headings, and by program names in its history.
Everything is normalized to one program code per program (`CPP`, `AP-I`...), with its
products, whether it is interruptible (the site's `IR` type) and its severity
(docs/sources-sce.md: interruptible BIP and AP-I events are emergencies; CPP, SDP, ELRP and SEP
warnings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from monitor.events import Severity


@dataclass(frozen=True)
class Program:
    code: str  # the normalized program code capmon publishes
    name: str
    interruptible: bool  # the site's IR type; price-responsive (DR) otherwise
    severity: Severity
    site_codes: tuple[str, ...]  # codes the JSON API, categories and history use
    headings: tuple[str, ...]  # patterns (lower case) of its HTML panel heading


PROGRAMS: tuple[Program, ...] = (
    Program("CPP", "Critical Peak Pricing", False, Severity.WARNING,
            ("CPP", "SAI"), ("critical peak pricing", "summer advantage", "(cpp)")),
    Program("SPD", "Save Power Day", False, Severity.WARNING,
            ("SPD",), ("save power day", "(spd)")),
    Program("SDP", "Summer Discount Plan", True, Severity.WARNING,
            ("SDP", "SDP-R", "SDP-C"), ("summer discount plan", "(sdp)")),
    Program("AP-I", "Agricultural & Pumping Interruptible", True, Severity.EMERGENCY,
            ("API", "AP-I"), ("agricultural", "(ap-i)", "(api)")),
    Program("BIP", "Base Interruptible Program", True, Severity.EMERGENCY,
            ("BIP", "I6"), ("base interruptible", "(bip)")),
    Program("CBP", "Capacity Bidding Program", True, Severity.WARNING,
            ("CBP", "CBP-ELECT"), ("capacity bidding", "(cbp)")),
    Program("DBP", "Demand Bidding Program", False, Severity.ADVISORY,
            ("DBP",), ("demand bidding", "(dbp)")),
    Program("DRC", "Demand Response Contracts", True, Severity.WARNING,
            ("DRC",), ("demand response contract", "(drc)")),
    Program("SEP", "Smart Energy Program", True, Severity.WARNING,
            ("SEP",), ("smart energy program", "(sep)")),
    Program("ELRP", "Emergency Load Reduction Program", False, Severity.WARNING,
            ("ELRP",), ("emergency load reduction", "(elrp)")),
    Program("RTP", "Real Time Pricing", False, Severity.INFO,
            ("RTP",), ("real time pricing", "(rtp)")),
)

_BY_SITE_CODE = {c: p for p in PROGRAMS for c in p.site_codes}


def program_for(code: str) -> Program:
    """The program for a site code (`SAI`, `API`, `BIP`...); unknown codes keep their name.

    An unknown program is still a DR event a CCA may care about: it is published as-is, as a
    price-responsive `warning`, never dropped.
    """
    text = code.strip().upper()
    found = _BY_SITE_CODE.get(text) or _BY_SITE_CODE.get(re.split(r"[\s_]", text)[0])
    if found is not None:
        return found
    return Program(text or "UNKNOWN", text or "Unknown program", False, Severity.WARNING,
                   (text,), ())


def program_for_heading(heading: str) -> Program | None:
    """The program an HTML panel heading names, e.g. `Capacity Bidding Program (CBP)`."""
    text = " ".join(heading.lower().split())
    for p in PROGRAMS:
        if any(h in text for h in p.headings):
            return p
    return None


def notice_of_product(product: str | None) -> Literal["day_ahead", "day_of"] | None:
    """Day-ahead or day-of, from CBP/DBP/DRC product names (`CBP 1-4 DA`, `ASC Day Of`)."""
    if not product:
        return None
    text = product.lower()
    if re.search(r"\bda\b|day[\s-]*ahead", text):
        return "day_ahead"
    if re.search(r"\bdo\b|day[\s-]*of", text):
        return "day_of"
    return None


_TEST = re.compile(r"\b(tests?|testing|measurement\s+and\s+evaluation)\b|\bM&E\b",
                   re.IGNORECASE)


def is_test(comments: str | None) -> bool:
    """SCE marks tests and M&E events only in free-text comments."""
    return bool(comments and _TEST.search(comments))
