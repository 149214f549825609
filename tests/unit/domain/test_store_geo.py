"""The geo index keys (chalicelib/domain/store_geo.py): ranges, merges, changes, the
choice of resolution. Pure: no DynamoDB."""
from __future__ import annotations

import random

import h3
import pytest

from chalicelib.domain import store_geo as g

CHUNXI = (30.6570, 104.0807)


def test_a_cells_leaf_range_holds_exactly_its_descendants():
    rng = random.Random(7)
    for _ in range(200):
        lat, lng = rng.uniform(18, 53), rng.uniform(73, 135)
        leaf = h3.latlng_to_cell(lat, lng, g.LEAF_RES)
        for res in range(g.PARTITION_RES, g.LEAF_RES + 1):
            cell = h3.cell_to_parent(leaf, res)
            low, high = g.leaf_range(cell)
            assert low <= leaf <= high
            # a neighbour's leaves fall outside (the range is exactly the cell)
            for other in h3.grid_ring(cell, 1):
                other_leaf = h3.cell_to_center_child(other, g.LEAF_RES)
                assert not low <= other_leaf <= high
            children = h3.cell_to_children(cell, g.LEAF_RES) if res >= 7 else ()
            assert all(low <= c <= high for c in children)


def test_a_pentagon_neighbourhood_keeps_ranges_exact():
    pentagon = next(p for p in h3.get_pentagons(5))
    low, high = g.leaf_range(pentagon)
    for child in h3.cell_to_children(pentagon, 8):
        assert low <= h3.cell_to_center_child(child, g.LEAF_RES) <= high


@pytest.mark.parametrize("res", [3, 4, 9])
def test_cells_outside_the_searchable_resolutions_are_refused(res):
    cell = h3.latlng_to_cell(*CHUNXI, res)
    if res in (3, 4, 9):
        assert g.leaf_range(cell)[0] <= g.leaf_range(cell)[1]
    with pytest.raises(ValueError):
        g.leaf_range(h3.latlng_to_cell(*CHUNXI, 2))


def test_the_seven_children_of_a_cell_merge_into_one_query():
    parent = h3.latlng_to_cell(*CHUNXI, 6)
    reads = g.read_plan("pickup", h3.cell_to_children(parent, 7))
    assert len(reads) == 1
    assert (reads[0].low, reads[0].high) == (g.leaf_range(parent)[0], g.leaf_range(parent)[1] + g.KEY_END)
    assert reads[0].partition == f"pickup#{h3.cell_to_parent(parent, 3)}"


def test_cells_in_two_partitions_are_two_queries_and_gaps_are_not_merged():
    a = h3.latlng_to_cell(*CHUNXI, 6)
    far = h3.latlng_to_cell(39.9, 116.4, 6)           # Beijing: another res-3 partition
    children = h3.cell_to_children(a, 7)
    reads = g.read_plan("trial", [children[0], children[2], far])
    assert len(reads) == 3
    assert {r.partition for r in reads} == {f"trial#{h3.cell_to_parent(a, 3)}", f"trial#{h3.cell_to_parent(far, 3)}"}


def test_a_sort_key_sits_inside_its_cells_range_whatever_the_store_id():
    leaf = g.leaf_cell(*CHUNXI)
    read = g.read_plan("pickup", [h3.cell_to_parent(leaf, 5)])[0]
    for store_id in ("a", "st_zzzzzzzzzzzzzzzz", "~~~", "st-0"):
        assert read.low <= g.sort_key(leaf, store_id) <= read.high


def test_an_active_store_has_one_entry_per_service_and_one_for_any_service():
    entries = g.index_entries("st1", *CHUNXI, ["trial", "pickup"], active=True)
    assert [e.service for e in entries] == ["*", "pickup", "trial"]
    assert {e.sort for e in entries} == {f"{g.leaf_cell(*CHUNXI)}#st1"}
    assert g.index_entries("st1", *CHUNXI, ["pickup"], active=False) == []


def test_a_move_deletes_the_old_entries_and_moves_the_counts():
    before = g.index_entries("st1", *CHUNXI, ["pickup"], active=True)
    after = g.index_entries("st1", 39.9, 116.4, ["pickup"], active=True)
    change = g.index_change([e.key for e in before], after)
    assert {e.key for e in change.delete} == {e.key for e in before}
    assert {e.key for e in change.put} == {e.key for e in after}
    old_cell, new_cell = before[0].count_cell, after[0].count_cell
    assert sorted(change.counts) == sorted([("*", old_cell, -1), ("pickup", old_cell, -1),
                                            ("*", new_cell, 1), ("pickup", new_cell, 1)])


def test_a_service_dropped_and_one_added_change_only_their_entries():
    before = g.index_entries("st1", *CHUNXI, ["pickup", "repair"], active=True)
    after = g.index_entries("st1", *CHUNXI, ["pickup", "trial"], active=True)
    change = g.index_change([e.key for e in before], after)
    cell = before[0].count_cell
    assert [e.service for e in change.delete] == ["repair"]
    assert sorted(change.counts) == [("repair", cell, -1), ("trial", cell, 1)]


def test_deactivation_removes_every_entry_and_a_rename_counts_nothing():
    before = g.index_entries("st1", *CHUNXI, ["pickup"], active=True)
    gone = g.index_change([e.key for e in before], [])
    assert len(gone.delete) == 2 and gone.put == () and all(n == -1 for *_, n in gone.counts)
    same = g.index_change([e.key for e in before], before)
    assert same.delete == () and same.counts == () and len(same.put) == 2


def test_dense_places_search_finer_than_empty_ones():
    leaf6 = h3.latlng_to_cell(*CHUNXI, 6)
    dense = g.Density({leaf6: 400, **{c: 150 for c in h3.grid_ring(leaf6, 1)}})
    sparse = g.Density({leaf6: 2})
    assert g.choose_resolution(*CHUNXI, dense, want=5) >= 8
    assert g.choose_resolution(*CHUNXI, sparse, want=5) <= 6
    assert g.choose_resolution(*CHUNXI, g.Density({}), want=5) == g.MIN_SEARCH_RES


def test_a_coarse_choice_next_to_a_crowd_steps_finer():
    leaf6 = h3.latlng_to_cell(*CHUNXI, 6)
    sibling = next(c for c in h3.cell_to_children(h3.cell_to_parent(leaf6, 4), 6) if c != leaf6
                   and c not in h3.grid_disk(leaf6, 4))
    crowd = g.Density({sibling: 500})           # nothing near the point, a crowd in the same res-4 parent
    assert g.choose_resolution(*CHUNXI, crowd, want=5) > g.MIN_SEARCH_RES


def test_density_sums_are_exact_for_coarser_cells():
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(*CHUNXI, 6), 3))[:20]
    density = g.Density({c: i + 1 for i, c in enumerate(cells)})
    parent = h3.cell_to_parent(cells[0], 3)
    assert density.count(parent) == sum(i + 1 for i, c in enumerate(cells) if h3.cell_to_parent(c, 3) == parent)
    assert density.count(cells[2]) == 3 and density.count(h3.latlng_to_cell(*CHUNXI, 8)) == 0
