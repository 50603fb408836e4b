"""SCE dispatch locations resolve to every SubLAP and ZIP they touch (the 2012-13 tables)."""

from __future__ import annotations

import csv
from pathlib import Path

from producers.sce_locations import ALL_SUBLAPS, resolve, sublaps_of_zips, tables

SHARED = Path(__file__).resolve().parents[1] / "fixtures" / "sce" / "history"


def test_zip_to_sublap_is_many_to_many() -> None:
    # Lancaster's 93536 straddles SCE North and SCE Northwest: both are kept.
    assert sublaps_of_zips(["93536"]) == {"SCEN", "SCNW"}
    assert sublaps_of_zips(["92260"]) == {"SCLD"}  # Palm Desert (Desert Community Energy)
    assert sublaps_of_zips(["92307"]) == {"SCHD"}  # Apple Valley
    assert sum(len(v) > 1 for v in tables().zip_sublaps.values()) == 61


def test_single_substation_event_maps_to_its_sublap_and_zips() -> None:
    geo = resolve("SUBSTATION", ["8347"])  # Pechanga, the 2010-07-28 test event
    assert "SCEC" in geo.sublaps
    assert set(geo.zips) == {"92536", "92543", "92544", "92557", "92590", "92592"}
    # Every ZIP's SubLAPs are included, so a CCA matching on any of them hears it.
    assert set(geo.sublaps) == {"SCEC"} | sublaps_of_zips(geo.zips)
    assert geo.resolved


def test_district_event_maps_through_its_zips() -> None:
    geo = resolve("District", ["48"])  # Fullerton, the 2007 Telegraph Sub events
    assert len(geo.zips) == 66 and "92831" in geo.zips
    assert set(geo.sublaps) == sublaps_of_zips(geo.zips)
    assert "SCEC" in geo.sublaps and geo.resolved


def test_all_and_sublap_and_abank_locations() -> None:
    assert resolve("ALL", []).sublaps == ALL_SUBLAPS
    assert resolve("District", ["All"]).sublaps == ALL_SUBLAPS
    assert resolve("SLAP", ["SCLD"]).sublaps == ("SCLD",)
    padua = resolve("ABANK", ["5060"])
    assert "SCEC" in padua.sublaps and padua.resolved and padua.zips


def test_unknown_places_and_bip_letters_cover_the_territory_unresolved() -> None:
    for geo in (resolve("BLOCK", ["P"]), resolve("SUBSTATION", ["99999"]), resolve(None, [])):
        assert geo.sublaps == ALL_SUBLAPS
        assert not geo.resolved


def test_2013_table_read_past_its_unbalanced_quote() -> None:
    # Line 1086 (`"MILL CREEK NO.2`) opens a quote it never closes; the lines after it are
    # still read: LYTLE CREEK P.H. (2320, two lines further) belongs to A-bank 5060 (PADUA).
    t = tables()
    assert 2319 in t.abank_substations[5064]
    assert 2320 in t.abank_substations[5060]
    assert sum(len(v) for v in t.abank_substations.values()) > 1300


def test_every_substation_and_district_of_the_sdp_history_resolves() -> None:
    with (SHARED / "api_bip_sdp_history_1998-2011.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["Program"] != "SDP" or row["Dispatch Location"] == "All":
            continue
        geo = resolve(row["Dipsatch Type"], [row["Dispatch Location"]])
        assert geo.resolved, row
        assert geo.zips, row
