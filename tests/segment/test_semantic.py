import itertools

import numpy as np
import pytest

from cascope.errors import InputError
from cascope.segment import instance_scores, instances_to_semantic, semantic_to_instances
from cascope.simulate import axons


def _two_touching_tubes() -> np.ndarray:
    """Two square tubes along X, 3x3 in (z, y), touching face to face along y."""
    lab = np.zeros((7, 10, 14), np.int32)
    lab[2:5, 1:4, 2:12] = 1
    lab[2:5, 4:7, 2:12] = 2
    return lab


def _brute_force(lab: np.ndarray, border: int, ring_axes: tuple[int, ...]) -> np.ndarray:
    """The documented definition, voxel by voxel (independent of the filter implementation)."""
    out = (lab > 0).astype(np.uint8)
    shape = np.array(lab.shape)
    offsets = [
        o
        for o in itertools.product(range(-border, border + 1), repeat=3)
        if sum(map(abs, o)) <= border
    ]
    for v in zip(*np.nonzero(lab), strict=True):
        own = lab[v]
        for o in offsets:
            n = np.clip(np.array(v) + o, 0, shape - 1)  # outside the volume repeats the edge
            other = lab[tuple(n)]
            in_ring = all(o[a] == 0 for a in range(3) if a not in ring_axes)
            if (in_ring and other != own) or (other not in (0, own)):
                out[v] = 2
                break
    return out


def _purity(pred: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of foreground voxels whose predicted instance's majority true label is theirs."""
    fg = truth > 0
    pairs, counts = np.unique(np.stack([pred[fg], truth[fg]]), axis=1, return_counts=True)
    majority: dict[int, int] = {}
    for (p, _t), c in zip(pairs.T, counts, strict=True):
        majority[p] = max(majority.get(p, 0), c)
    return sum(majority.values()) / fg.sum()


def test_two_touching_tubes_expected_border_and_input_unchanged():
    lab = _two_touching_tubes()
    before = lab.copy()
    sem = instances_to_semantic(lab, border=1, planes="all")
    np.testing.assert_array_equal(lab, before)
    # each 3x3 tube keeps only its centre line as axon, minus the two end caps
    expected = np.where(lab > 0, 2, 0).astype(np.uint8)
    expected[3, 2, 3:11] = 1
    expected[3, 5, 3:11] = 1
    np.testing.assert_array_equal(sem, expected)
    # the touching faces (y = 3 of tube 1, y = 4 of tube 2) are border all along
    assert (sem[2:5, 3:5, 2:12] == 2).all()


def test_yz_planes_have_no_end_caps_but_keep_contacts():
    lab = _two_touching_tubes()
    sem = instances_to_semantic(lab, border=1, planes="yz")
    assert sem[3, 2, 2] == 1 and sem[3, 2, 11] == 1  # tube ends along X are not border
    np.testing.assert_array_equal(sem, _brute_force(lab, 1, (0, 1)))
    # a contact across X (tubes along Y meeting end to end in x) is still border in "yz" mode
    lab2 = np.zeros((7, 12, 10), np.int32)
    lab2[2:5, 2:10, 1:5] = 1
    lab2[2:5, 2:10, 5:9] = 2
    sem2 = instances_to_semantic(lab2, planes="yz")
    assert (sem2[3, 4:8, 4] == 2).all() and (sem2[3, 4:8, 5] == 2).all()
    assert (sem2[3, 4:8, 2] == 1).all()


@pytest.mark.parametrize("planes,axes", [("all", (0, 1, 2)), ("yz", (0, 1))])
@pytest.mark.parametrize("border", [1, 2])
def test_matches_brute_force_definition(rng, planes, axes, border):
    lab = np.zeros((6, 12, 12), np.int32)
    for k in range(1, 5):
        z, y, x = rng.integers(0, 4), rng.integers(0, 8), rng.integers(0, 8)
        lab[z : z + 3, y : y + 4, x : x + 5] = k
    sem = instances_to_semantic(lab, border=border, planes=planes)  # type: ignore[arg-type]
    np.testing.assert_array_equal(sem, _brute_force(lab, border, axes))


def test_all_planes_border_one_equals_simulated_semantic():
    sim = axons(seed=3, shape=(12, 48, 48), density="dense")
    np.testing.assert_array_equal(instances_to_semantic(sim.labels, planes="all"), sim.semantic)


def _necked_tube() -> np.ndarray:
    """A 3x3 tube along X pinched to one voxel for two slices: its axon-class core breaks."""
    lab = np.zeros((7, 10, 16), np.int32)
    lab[2:5, 1:4, 1:15] = 1
    lab[:, :, 7:9] = 0
    lab[3, 2, 7:9] = 1
    return lab


def test_round_trip_hand_made():
    lab = _two_touching_tubes()
    for planes in ("all", "yz"):
        back = semantic_to_instances(instances_to_semantic(lab, planes=planes), planes=planes)
        np.testing.assert_array_equal(back, lab)


@pytest.mark.parametrize("planes", ["all", "yz"])
def test_broken_core_comes_back_as_one_instance(planes):
    lab = _necked_tube()
    sem = instances_to_semantic(lab, planes=planes)
    assert (sem[:, :, 7:9] != 1).all()  # the neck is all border: the core is in two pieces
    back = semantic_to_instances(sem, planes=planes)
    np.testing.assert_array_equal(back, lab)
    # next to a touching tube the necked one is still whole, and the two stay apart
    both = lab.copy()
    both[2:5, 4:7, 1:15] = 2
    back = semantic_to_instances(instances_to_semantic(both, planes=planes), planes=planes)
    assert back.max() == 2
    assert instance_scores(both, back).f1 == 1.0
    assert _purity(back, both) > 0.95


def test_coreless_sheet_on_a_thick_tube_stays_apart():
    lab = np.zeros((10, 10, 15), np.int32)
    lab[2:7, 2:8, 1:14] = 1
    lab[7, 3:7, 1:14] = 2  # one slice thick: all border, no core
    back = semantic_to_instances(instances_to_semantic(lab, planes="yz"), planes="yz")
    np.testing.assert_array_equal(back, lab)


def test_2d_and_orphans():
    lab = _necked_tube()[3]
    back = semantic_to_instances(instances_to_semantic(lab, planes="all"), planes="all")
    np.testing.assert_array_equal(back, lab)
    lab3 = np.zeros((7, 10, 16), np.int32)
    lab3[1:6, 1:6, 1:15] = 1
    lab3[3, 8, 2:12] = 2  # a one-voxel line: all border
    sem = instances_to_semantic(lab3, planes="all")
    assert semantic_to_instances(sem, planes="all").max() == 2
    kept = semantic_to_instances(sem, planes="all", keep_orphan_borders=False)
    np.testing.assert_array_equal(kept, lab3 == 1)


def test_round_trip_simulated():
    sim = axons(seed=5, shape=(16, 64, 64), density="dense")
    sem = instances_to_semantic(sim.labels, planes="all")
    back = semantic_to_instances(sem, planes="all")
    np.testing.assert_array_equal(back > 0, sim.labels > 0)
    # crossing thin axons touch without contact evidence, so some merge; most come back whole
    assert _purity(back, sim.labels) > 0.9
    assert instance_scores(sim.labels, back).f1 >= 0.8


def test_semantic_to_instances_input_unchanged_and_validated():
    sem = instances_to_semantic(_two_touching_tubes(), planes="all")
    before = sem.copy()
    semantic_to_instances(sem)
    np.testing.assert_array_equal(sem, before)
    with pytest.raises(InputError):
        semantic_to_instances(np.full((3, 3, 3), 5))
    with pytest.raises(InputError):
        instances_to_semantic(np.zeros((2, 2, 2, 2), int))
    with pytest.raises(InputError):
        semantic_to_instances(sem, border=0)
    with pytest.raises(InputError):
        semantic_to_instances(sem, planes="xy")  # type: ignore[arg-type]


def test_round_trip_on_real_curated_labels(real_data):
    import cc3d
    import tifffile

    gt = tifffile.imread(real_data / "axons_intensive_gt_instances_zyx.tif")[:, 256:512, 256:512]
    sem = instances_to_semantic(gt, planes="yz")
    back = semantic_to_instances(sem, min_size=0)
    # every foreground voxel is kept, and recovered instances rarely mix two curated labels
    np.testing.assert_array_equal(back > 0, gt > 0)
    assert _purity(back, gt) > 0.9

    def at_least(lab: np.ndarray, n: int) -> np.ndarray:
        return np.where(np.bincount(lab.ravel())[lab] >= n, lab, 0)

    # curated labels are made of disconnected pieces; no conversion can join those, so the
    # connected pieces bound what the round trip can reach
    pieces = cc3d.connected_components(gt, connectivity=26)
    ceiling = instance_scores(gt, at_least(pieces, 100)).f1
    f1 = instance_scores(gt, at_least(back, 100)).f1
    assert f1 >= 0.85 * ceiling


@pytest.mark.parametrize("method", ["components", "border", "cores"])
def test_decoding_in_blocks_merges_objects_across_block_borders(method):
    from cascope.segment import decode_in_blocks, decode_instances

    sim = axons(seed=4, shape=(16, 80, 96))
    whole = decode_instances(sim.semantic, method=method, min_size=20)
    blocks = decode_in_blocks(
        sim.semantic, method=method, block=(16, 40, 40), overlap=(0, 8, 8), min_size=20
    )
    # the axons cross block borders, yet no block cuts one: every whole-volume instance comes
    # back as one instance
    assert int(blocks.max()) == int(whole.max()) >= 2
    assert instance_scores(whole, blocks).f1 == 1.0
