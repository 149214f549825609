"""The geo index of stores (issue M11), as pure functions: its keys, the key ranges a
nearest-store search reads, and the choice of search resolution.

The layout (measured against alternatives in docs/design/m11-geo-index.md):

* one index item per (active store, service it offers), plus one under ``ANY_SERVICE``
  (a search that names no service);
* partition key ``"<service>#<H3 res-3 cell>"`` (``PARTITION_RES``: a region ~ 69 km
  across), sort key ``"<H3 res-9 cell>#<store_id>"`` (``LEAF_RES``).

Every res-9 cell id has the same resolution field, so the ids sort by base cell, then
digit by digit: the res-9 descendants of *any* cell of resolution 3..9 are one
contiguous sort-key range (``leaf_range``). A search at resolution r therefore reads
any cell — or its parent — with one ``Query … BETWEEN``, and ranges that follow each
other merge into one Query (``read_plan``).

Which resolution: fine where stores are dense (a Shanghai street), coarse where they
are sparse (the west), chosen from store counts per (service, res-6 cell) that the
reader keeps in memory (``choose_resolution``). The counts only change the cost of a
search, never its answer: ``routing.nearest_stores`` stops on a proven lower bound.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

ANY_SERVICE = "*"             # the index entry every active store has: a search without a service
PARTITION_RES = 3             # partition: <service>#<res-3 cell>
LEAF_RES = 9                  # sort key: <res-9 cell>#<store_id>
COUNT_RES = 6                 # density counts: stores per (service, res-6 cell)
MIN_SEARCH_RES = 4            # coarsest search: reads res-3 parents (one partition each)
MAX_SEARCH_RES = 9
# A search reads ring cells' parents one resolution up; a parent holding more stores than
# this is read finer (an item is ~ 270 B: 60 of them fill 4 pages of 4 KB, 2 RRU)
MAX_STORES_PER_READ = 60
# The share of indexed stores that can serve at a given moment (open, not capped): a
# planning guess for "how many does a disk hold", it changes the cost, not the answer
USABLE_SHARE = 0.75
KEY_END = "~"                 # sorts after "#<store_id>": ``<hi>~`` closes a BETWEEN over a leaf

_RES_SHIFT = 52
_DIGIT_BITS = 3


def _shift(digit: int) -> int:
    return (15 - digit) * _DIGIT_BITS


def leaf_cell(lat: float, lng: float) -> str:
    import h3

    return h3.latlng_to_cell(lat, lng, LEAF_RES)


def partition_key(service: str, leaf: str) -> str:
    import h3

    return f"{service}#{h3.cell_to_parent(leaf, PARTITION_RES)}"


def sort_key(leaf: str, store_id: str) -> str:
    return f"{leaf}#{store_id}"


@dataclass(frozen=True)
class IndexEntry:
    partition: str     # <service>#<res-3 cell>
    sort: str          # <res-9 cell>#<store_id>
    service: str
    count_cell: str    # the res-6 cell whose count the entry is part of

    @property
    def key(self) -> str:
        """How the store record remembers it (to delete it when the store changes)."""
        return f"{self.partition}|{self.sort}"


def index_entries(store_id: str, lat: float, lng: float, services: Iterable[str], active: bool) -> list[IndexEntry]:
    """The index items a store should have now: none unless active; one per service,
    and one under ``ANY_SERVICE``."""
    if not active:
        return []
    import h3

    leaf = leaf_cell(lat, lng)
    count_cell = h3.cell_to_parent(leaf, COUNT_RES)
    return [IndexEntry(partition_key(service, leaf), sort_key(leaf, store_id), service, count_cell)
            for service in sorted(set(services) | {ANY_SERVICE})]


def entry_from_key(key: str) -> IndexEntry:
    import h3

    partition, sort = key.split("|", 1)
    service = partition.rsplit("#", 1)[0]
    leaf = sort.split("#", 1)[0]
    return IndexEntry(partition, sort, service, h3.cell_to_parent(leaf, COUNT_RES))


@dataclass(frozen=True)
class IndexChange:
    delete: tuple[IndexEntry, ...]             # entries the store no longer has
    put: tuple[IndexEntry, ...]                # every entry it has now (rewritten: name, hours may change)
    counts: tuple[tuple[str, str, int], ...]   # (service, res-6 cell, +n / -n), no zeros


def index_change(old_keys: Iterable[str], new_entries: list[IndexEntry]) -> IndexChange:
    """What one store change does to the index and to the density counts."""
    old = {key: entry_from_key(key) for key in old_keys}
    new = {entry.key: entry for entry in new_entries}
    delta: dict[tuple[str, str], int] = defaultdict(int)
    for key in old.keys() - new.keys():
        delta[(old[key].service, old[key].count_cell)] -= 1
    for key in new.keys() - old.keys():
        delta[(new[key].service, new[key].count_cell)] += 1
    return IndexChange(delete=tuple(old[k] for k in sorted(old.keys() - new.keys())),
                       put=tuple(new[k] for k in sorted(new)),
                       counts=tuple((s, c, n) for (s, c), n in sorted(delta.items()) if n))


# --- ranges ---------------------------------------------------------------------

def leaf_range(cell: str) -> tuple[str, str]:
    """The smallest and largest res-9 descendant of ``cell`` (resolution 3..9), as the
    15-hex-digit ids the sort key starts with."""
    x = int(cell, 16)
    res = (x >> _RES_SHIFT) & 0xF
    if not PARTITION_RES <= res <= LEAF_RES:
        raise ValueError(f"cell {cell} has resolution {res}; the index reads {PARTITION_RES}..{LEAF_RES}")
    x = (x & ~(0xF << _RES_SHIFT)) | (LEAF_RES << _RES_SHIFT)
    lo = hi = x
    for digit in range(res + 1, LEAF_RES + 1):
        lo &= ~(7 << _shift(digit))
        hi = (hi & ~(7 << _shift(digit))) | (6 << _shift(digit))
    return f"{lo:015x}", f"{hi:015x}"


def _ordinal(leaf_hex: str) -> tuple[int, int]:
    """(base cell, digits 1..9 as one base-7 number): two ranges whose ordinals are
    consecutive have no res-9 cell between them, so they merge into one BETWEEN."""
    x = int(leaf_hex, 16)
    n = 0
    for digit in range(1, LEAF_RES + 1):
        n = n * 7 + ((x >> _shift(digit)) & 7)
    return (x >> 45) & 0x7F, n


@dataclass(frozen=True)
class RangeRead:
    partition: str
    low: str           # sort key BETWEEN low AND high
    high: str


def read_plan(service: str, cells: Iterable[str]) -> list[RangeRead]:
    """One Query per maximal run of contiguous leaf ranges inside one partition, for
    every store of ``service`` in ``cells`` (resolution 3..9 each)."""
    import h3

    by_partition: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for cell in set(cells):
        parent = h3.cell_to_parent(cell, PARTITION_RES)
        by_partition[f"{service}#{parent}"].append(leaf_range(cell))
    reads = []
    for partition in sorted(by_partition):
        ranges = sorted(by_partition[partition])
        merged = [list(ranges[0])]
        for low, high in ranges[1:]:
            last_base, last_n = _ordinal(merged[-1][1])
            base, n = _ordinal(low)
            if base == last_base and n <= last_n + 1:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        reads += [RangeRead(partition, low, high + KEY_END) for low, high in merged]
    return reads


def parents_to_read(cells: Iterable[str], already: set[str]) -> list[str]:
    """Each ring cell is read through its parent one resolution coarser (a superset:
    extra stores do no harm and the next ring is then mostly read already); a parent is
    read once per search (``already`` is updated)."""
    import h3

    wanted = []
    for cell in cells:
        parent = h3.cell_to_parent(cell, max(PARTITION_RES, h3.get_resolution(cell) - 1))
        if parent not in already:
            already.add(parent)
            wanted.append(parent)
    return wanted


# --- the search resolution ----------------------------------------------------------

class Density:
    """Store counts per res-6 cell for one service, with exact sums for res 3..5."""

    def __init__(self, counts: Mapping[str, int]):
        import h3

        self.counts = {cell: n for cell, n in counts.items() if n > 0}
        self.coarse: dict[str, int] = defaultdict(int)
        for cell, n in self.counts.items():
            for res in range(PARTITION_RES, COUNT_RES):
                self.coarse[h3.cell_to_parent(cell, res)] += n

    def count(self, cell: str) -> int:
        import h3

        res = h3.get_resolution(cell)
        if res == COUNT_RES:
            return self.counts.get(cell, 0)
        return self.coarse.get(cell, 0) if res < COUNT_RES else 0


def choose_resolution(lat: float, lng: float, density: Density, want: int) -> int:
    """The finest resolution whose 7-cell disk should hold ``want`` usable stores, from
    the density of the res-6 cells around the point (the nearest non-empty disk of 1,
    2 or 4 rings); then one step finer at a time while the first parent read (res r−1
    around the point, exact count known up to res 6) would hold more than
    ``MAX_STORES_PER_READ``. No counts at all (a new region): the coarsest search."""
    import h3

    centre = h3.latlng_to_cell(lat, lng, COUNT_RES)
    area6 = h3.average_hexagon_area(COUNT_RES, "km^2")
    found, disk = 0, ()
    for rings in (1, 2, 4):
        disk = h3.grid_disk(centre, rings)
        found = sum(density.counts.get(cell, 0) for cell in disk)
        if found:
            break
    chosen = MIN_SEARCH_RES
    if found:
        per_km2 = found * USABLE_SHARE / (len(disk) * area6)
        for res in range(MAX_SEARCH_RES, MIN_SEARCH_RES - 1, -1):
            if per_km2 * 7 * h3.average_hexagon_area(res, "km^2") >= want:
                chosen = res
                break
    while chosen <= COUNT_RES and density.count(h3.latlng_to_cell(lat, lng, chosen - 1)) > MAX_STORES_PER_READ:
        chosen += 1
    return chosen
