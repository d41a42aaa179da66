"""Every event table follows the one schema of :mod:`cascope.io.event_table`."""

from __future__ import annotations

import numpy as np

from cascope.events import label_events
from cascope.io import event_table
from cascope.simulate import mscts


def _follows_schema(table, columns) -> None:
    assert tuple(table.columns) == tuple(columns)
    assert table.columns[: len(event_table.EVENT_COLUMNS)].tolist() == list(
        event_table.EVENT_COLUMNS
    )
    for col in columns:
        assert table[col].dtype == np.dtype(event_table.DTYPES[col]), col


def test_detected_and_simulated_tables_share_the_schema() -> None:
    sim = mscts(seed=3, n_frames=100, shape=(64, 64))
    assert len(sim.events) > 0
    _follows_schema(sim.events, event_table.TRUTH_COLUMNS)
    _, detected = label_events((sim.labels > 0).astype(np.float32), threshold=0.5)
    assert len(detected) > 0
    _follows_schema(detected, event_table.DETECTION_COLUMNS)
    # the truth's boxes hold its labels: detecting the labels finds the same boxes
    box = list(event_table.BOX_COLUMNS)
    found = {tuple(r) for r in detected[box].to_numpy()}
    assert found & {tuple(r) for r in sim.events[box].to_numpy()}


def test_hdf5_layout_names_the_table_box() -> None:
    names = event_table.MSCT_H5_NAMES
    assert list(names) == list(event_table.MSCT_H5_COLUMNS)
    assert tuple(names.values()) == ("id", *event_table.BOX_COLUMNS)
