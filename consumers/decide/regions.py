"""Which regions a condition covers: a region list matches a condition that names any of them.

A condition on `CAISO Grid` covers every subscription region. A condition on a larger area
covers the smaller areas inside it (`Southern CA Region` covers `SCE-TAC` and SCE's SubLAPs),
so a CCA subscribed to `SCLD` hears a Southern CA Region notice; the reverse does not hold
(a `SCLD` DR event is not news to a subscriber of `Northern CA Region`).
"""

from __future__ import annotations

from monitor.attributes import DrEventAttributes
from monitor.events import CAISO_GRID, Condition

SCE_SUBLAPS = frozenset({"SCEC", "SCEN", "SCEW", "SCHD", "SCLD", "SCNW"})

# area -> the smaller areas it contains (transitively closed below).
_CHILDREN: dict[str, frozenset[str]] = {
    "Southern CA Region": frozenset({"SCE-TAC"}),
    "SCE-TAC": SCE_SUBLAPS,
    "Northern CA Region": frozenset({"PGE-TAC"}),
    "South OC San Diego Region": frozenset({"SDGE-TAC"}),
    "VEA Region": frozenset({"VEA-TAC"}),
}


def _closure(area: str) -> frozenset[str]:
    out = {area}
    stack = [area]
    while stack:
        for child in _CHILDREN.get(stack.pop(), frozenset()):
            if child not in out:
                out.add(child)
                stack.append(child)
    return frozenset(out)


_COVERS = {area: _closure(area) for area in _CHILDREN}


class Coverage:
    """The set of region names a condition covers (or everything, for `CAISO Grid`)."""

    __slots__ = ("everything", "names")

    def __init__(self, names: frozenset[str], everything: bool) -> None:
        self.names = names
        self.everything = everything

    def matches(self, wanted: frozenset[str]) -> bool:
        """True when a subscription's region list (empty = anywhere) matches."""
        return not wanted or self.everything or not wanted.isdisjoint(self.names)


def coverage(c: Condition) -> Coverage:
    names: set[str] = set()
    for region in c.regions:
        names |= _COVERS.get(region, {region})
    attrs = c.attributes
    if isinstance(attrs, DrEventAttributes):
        names.update(attrs.sublaps)
        names.update(attrs.zips)
    return Coverage(frozenset(names), CAISO_GRID in c.regions)


def within(c: Condition, areas: frozenset[str]) -> bool:
    """True when every region `c` names lies inside one of `areas` (a silence's reach: a
    notice for all of CAISO is not inside `SCE-TAC`, so silencing SCE-TAC leaves it alone)."""
    inside: set[str] = set()
    for area in areas:
        inside |= _COVERS.get(area, {area})
    return bool(c.regions) and all(r in inside for r in c.regions)
