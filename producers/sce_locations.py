"""SCE's location tables: where a DR event's dispatch location is, in SubLAPs and ZIP codes.

SCE dispatches by territory (`ALL`), SubLAP (`SLAP`), A-bank (transmission substation),
B-bank (`SUBSTATION`), district (field location), or block (numeric distribution blocks, and
BIP/I-6 interruptible block letters). A CCA knows its ZIP codes, so every location is resolved
to the SubLAPs and ZIPs it touches. The tables ship as package data (producers/data/sce/),
copied byte for byte from SCE's DR event site seed data (2012-13 boundaries):

- zip_to_sublap_2012.derived.csv: ZIP -> SubLAP, many-to-many (61 ZIPs span two SubLAPs);
- substation_zip_block_sublap_2012.csv: substation number -> ZIPs, numeric block, SubLAP;
- sublap_abank_substation_block_2013.csv: SubLAP -> A-bank -> B-bank -> block. One line has
  an unbalanced `"` (`"MILL CREEK NO.2`); a standard CSV reader would swallow the ~300 lines
  after it into one field, so it is read with quoting disabled;
- district_zip.csv: district number -> ZIPs;
- bip_block_names.csv: BIP/I-6 block letters and their programs.

Resolution keeps every overlap (alert on any): the SubLAPs of a location are those the tables
name for it plus those of each of its ZIPs. A location the tables do not know, and BIP block
letters (which group customers across the territory, not a place), resolve to the whole
territory, flagged as unresolved: a missed alert costs a CCA more than a broad one.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeVar

SUBLAPS: Mapping[str, str] = {
    "SCEC": "SCE Core (LA Basin)",
    "SCEN": "SCE North",
    "SCEW": "SCE West",
    "SCHD": "SCE High Desert",
    "SCLD": "SCE Low Desert",
    "SCNW": "SCE Northwest",
}
_K = TypeVar("_K")
_V = TypeVar("_V")

ALL_SUBLAPS: tuple[str, ...] = tuple(sorted(SUBLAPS))

# The site's location types, normalized (the site spells `District` in mixed case).
LOCATION_TYPES = ("ALL", "SLAP", "ABANK", "SUBSTATION", "DISTRICT", "BLOCK")


@dataclass(frozen=True)
class Geography:
    sublaps: tuple[str, ...]
    zips: tuple[str, ...]
    # False when some location was not found in the tables (territory-wide fallback).
    resolved: bool


@dataclass(frozen=True)
class Tables:
    zip_sublaps: Mapping[str, frozenset[str]]
    substation_zips: Mapping[int, frozenset[str]]
    substation_sublaps: Mapping[int, frozenset[str]]
    district_zips: Mapping[int, frozenset[str]]
    district_names: Mapping[int, str]
    abank_sublaps: Mapping[int, frozenset[str]]
    abank_substations: Mapping[int, frozenset[int]]
    block_sublaps: Mapping[int, frozenset[str]]
    bip_blocks: Mapping[str, str]  # block letter -> program (I6-15, I6-30, BIP-15, BIP-30)


def _read(name: str) -> str:
    return resources.files("producers.data.sce").joinpath(name).read_text(encoding="utf-8")


def _freeze(d: Mapping[_K, set[_V]]) -> dict[_K, frozenset[_V]]:
    return {k: frozenset(v) for k, v in d.items()}


def _int(text: str) -> int | None:
    text = text.strip().strip('"')
    return int(text) if text.isdigit() else None


@cache
def tables() -> Tables:
    """Load the package tables once (about 6,000 rows; a few milliseconds)."""
    zip_sublaps: dict[str, set[str]] = defaultdict(set)
    for row in csv.DictReader(io.StringIO(_read("zip_to_sublap_2012.derived.csv"))):
        zip_sublaps[row["zip_code"].strip()].add(row["sublap_code"].strip())

    sub_zips: dict[int, set[str]] = defaultdict(set)
    sub_sublaps: dict[int, set[str]] = defaultdict(set)
    block_sublaps: dict[int, set[str]] = defaultdict(set)
    for row in csv.DictReader(io.StringIO(_read("substation_zip_block_sublap_2012.csv"))):
        num = _int(row["SUBSTATION_NUM"])
        if num is None:
            continue
        sub_zips[num].add(row["ZIP_CODE"].strip())
        sub_sublaps[num].add(row["slap_id"].strip())
        block = _int(row["Block"])
        if block is not None:
            block_sublaps[block].add(row["slap_id"].strip())

    district_zips: dict[int, set[str]] = defaultdict(set)
    district_names: dict[int, str] = {}
    for row in csv.DictReader(io.StringIO(_read("district_zip.csv"))):
        num = _int(row["DISTRICT_NUM"])
        if num is None:
            continue
        district_zips[num].add(row["ZIP_CODE"].strip())
        district_names[num] = row["DISTRICT_NAME"].strip()

    abank_sublaps: dict[int, set[str]] = defaultdict(set)
    abank_subs: dict[int, set[int]] = defaultdict(set)
    # Quoting disabled: see the module docstring (the unbalanced quote of MILL CREEK NO.2).
    reader = csv.reader(io.StringIO(_read("sublap_abank_substation_block_2013.csv")),
                        quoting=csv.QUOTE_NONE)
    header = next(reader)
    col = {name: i for i, name in enumerate(header)}
    for fields in reader:
        if len(fields) < len(header) - 1:
            continue
        slap = fields[col["SLAP_CODE"]].strip()
        abank = _int(fields[col["ABANK_NUM"]])
        bbank = _int(fields[col["BBANK_NUM"]])
        block = _int(fields[col["BLOCK_NUM"]])
        if slap not in SUBLAPS:
            continue
        if abank is not None:
            abank_sublaps[abank].add(slap)
            if bbank is not None:
                abank_subs[abank].add(bbank)
        if bbank is not None:
            sub_sublaps[bbank].add(slap)
        if block is not None:
            block_sublaps[block].add(slap)

    bip_blocks: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(_read("bip_block_names.csv"))):
        bip_blocks[row["BLOCK_NAME"].strip().upper()] = row["PROGRAM_NAME"].strip()

    return Tables(
        zip_sublaps=_freeze(zip_sublaps),
        substation_zips=_freeze(sub_zips),
        substation_sublaps=_freeze(sub_sublaps),
        district_zips=_freeze(district_zips),
        district_names=district_names,
        abank_sublaps=_freeze(abank_sublaps),
        abank_substations=_freeze(abank_subs),
        block_sublaps=_freeze(block_sublaps),
        bip_blocks=bip_blocks,
    )


def normalize_location_type(raw: str | None) -> str | None:
    """The site's location type in upper case (`District` -> `DISTRICT`); None if unknown."""
    if raw is None:
        return None
    text = raw.strip().upper().replace("-", "").replace(" ", "")
    aliases = {"SUBLAP": "SLAP", "TERRITORY": "ALL", "BBANK": "SUBSTATION"}
    text = aliases.get(text, text)
    return text if text in LOCATION_TYPES else None


def is_all(value: str) -> bool:
    return value.strip().upper() in ("ALL", "ALL DISTRICTS", "ALL SUBSTATIONS", "")


def sublaps_of_zips(zips: Iterable[str]) -> set[str]:
    t = tables()
    found: set[str] = set()
    for z in zips:
        found |= t.zip_sublaps.get(z.strip()[:5], frozenset())
    return found


def resolve(location_type: str | None, locations: Iterable[str],
            zips: Iterable[str] = ()) -> Geography:
    """The SubLAPs and ZIP codes an event's location touches (every overlap kept).

    `zips` are ZIP codes the site itself listed for the event; they are kept and their SubLAPs
    added. Territory-wide events list no ZIPs (every ZIP of SCE would be noise).
    """
    t = tables()
    ltype = normalize_location_type(location_type)
    values = [v.strip() for v in locations if v.strip()]
    listed = {z.strip()[:5] for z in zips if z.strip()[:5].isdigit()}
    sublaps = sublaps_of_zips(listed)
    found_zips: set[str] = set(listed)
    resolved = True

    if ltype is None and not values:
        # Nothing said where: the whole territory, unless the site listed ZIP codes.
        if listed:
            return Geography(tuple(sorted(sublaps)), tuple(sorted(found_zips)), True)
        return Geography(ALL_SUBLAPS, (), False)
    if ltype == "ALL" or any(is_all(v) for v in values) or not values:
        return Geography(ALL_SUBLAPS, tuple(sorted(found_zips)), ltype is not None)

    for value in values:
        number = _int(value.split()[-1]) if value.split() else None
        if ltype == "SLAP" and value.upper() in SUBLAPS:
            sublaps.add(value.upper())
        elif ltype == "SUBSTATION" and number is not None and number in t.substation_sublaps:
            sublaps |= t.substation_sublaps[number]
            zs = t.substation_zips.get(number, frozenset())
            found_zips |= zs
            sublaps |= sublaps_of_zips(zs)
        elif ltype == "DISTRICT" and number is not None and number in t.district_zips:
            zs = t.district_zips[number]
            found_zips |= zs
            sublaps |= sublaps_of_zips(zs)
        elif ltype == "ABANK" and number is not None and number in t.abank_sublaps:
            sublaps |= t.abank_sublaps[number]
            for sub in t.abank_substations.get(number, frozenset()):
                zs = t.substation_zips.get(sub, frozenset())
                found_zips |= zs
                sublaps |= sublaps_of_zips(zs)
        elif ltype == "BLOCK" and number is not None and number in t.block_sublaps:
            sublaps |= t.block_sublaps[number]
        else:
            # BIP block letters and locations the 2012-13 tables do not know.
            resolved = False
    if not resolved:
        sublaps = set(ALL_SUBLAPS)
    return Geography(tuple(sorted(sublaps)), tuple(sorted(found_zips)), resolved)
