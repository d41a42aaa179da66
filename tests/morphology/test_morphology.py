import numpy as np
import pandas as pd
import pytest

from cascope.errors import InputError
from cascope.morphology import (
    fret_ratios,
    measure_structures,
    plot_measurements,
    skeleton_measurements,
    write_table,
)
from cascope.simulate import axons


@pytest.mark.parametrize(
    "length,direction", [(60.0, (0.0, 0.6, 0.8)), (40.0, (0.2, 0.6, 0.8)), (80.0, (0.0, 0.0, 1.0))]
)
def test_straight_tube_length_within_5_percent(length, direction):
    sim = axons(
        mode="straight", tube_length=length, tube_direction=direction, shape=(24, 64, 100), seed=0
    )
    row = skeleton_measurements(sim.labels).iloc[0]
    assert row["length"] == pytest.approx(sim.lengths()[1], rel=0.05)
    assert row["branch_points"] == 0
    assert row["tortuosity"] == pytest.approx(1.0, abs=0.1)
    # cylinder-equivalent diameter close to the planted 2 * radius
    assert row["mean_diameter"] == pytest.approx(2 * sim.radii[0], rel=0.25)


def test_anisotropic_voxels_scale_length():
    sim = axons(mode="straight", tube_length=50, tube_direction=(0, 0, 1), shape=(16, 32, 80))
    iso = skeleton_measurements(sim.labels).iloc[0]
    scaled = skeleton_measurements(sim.labels, voxel_size=(0.5, 0.2, 0.2)).iloc[0]
    assert scaled["length"] == pytest.approx(0.2 * iso["length"], rel=0.1)
    assert scaled["volume"] == pytest.approx(0.02 * iso["volume"])


def test_branch_point_of_a_t_shape():
    lab = np.zeros((9, 60, 60), np.int32)
    lab[3:6, 28:31, 5:55] = 1  # bar along x
    lab[3:6, 30:55, 28:31] = 1  # stem along y from the bar's middle
    row = skeleton_measurements(lab).iloc[0]
    assert row["branch_points"] >= 1
    assert row["branches"] >= 3


def test_random_axons_lengths_match_ground_truth():
    sim = axons(seed=3, shape=(16, 96, 96))
    table = skeleton_measurements(sim.labels)
    truth = sim.lengths()
    for _, row in table.iterrows():
        assert row["length"] == pytest.approx(truth[row["label"]], rel=0.1)


def test_fret_ratio_recovered_within_5_percent():
    sim = axons(
        mode="straight",
        fret=True,
        tube_length=60,
        shape=(24, 64, 64),
        seed=4,
        fret_ratio=(1.4, 1.4),
    )
    table, dists = fret_ratios(sim.noisy[0], sim.noisy[1], sim.labels)
    row = table.iloc[0]
    assert row["ratio"] == pytest.approx(1.4, rel=0.05)
    assert row["ratio_median"] == pytest.approx(1.4, rel=0.05)
    # the estimated background matches the simulated flat background
    assert row["donor_background"] == pytest.approx(sim.background[0], rel=0.02)
    assert dists[1].size == row["n_voxels"] > 50


def test_measure_table_and_figure(tmp_path):
    sim = axons(seed=2, fret=True, shape=(16, 64, 64))
    table, dists = measure_structures(sim.labels, donor=sim.noisy[0], acceptor=sim.noisy[1])
    assert {"length", "ratio", "ratio_median", "tortuosity"} <= set(table.columns)
    assert len(table) == sim.labels.max()
    write_table(table, tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, table)
    write_table(table, tmp_path / "t.csv")
    plot_measurements(table, tmp_path / "fig.png", distributions=dists)
    assert (tmp_path / "fig.png").stat().st_size > 1000
    with pytest.raises(InputError):
        measure_structures(sim.labels, donor=sim.noisy[0])
    with pytest.raises(InputError):
        write_table(table, tmp_path / "t.xlsx")


def test_measure_columns_name_their_units():
    from cascope.morphology.measure import with_units

    sim = axons(mode="straight", tube_length=40, tube_direction=(0, 0, 1), shape=(12, 24, 60))
    table, _ = measure_structures(sim.labels, voxel_size=(1.0, 0.5, 0.5))
    um = with_units(table, micrometres=True)
    vox = with_units(table, micrometres=False)
    assert {"length_um", "mean_diameter_um", "volume_um3"} <= set(um.columns)
    assert {"length_voxels", "mean_diameter_voxels", "volume_voxels"} <= set(vox.columns)
    assert "length" not in um.columns and "length" not in vox.columns
    np.testing.assert_array_equal(um["length_um"], table["length"])
