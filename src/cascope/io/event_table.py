"""The event table: the one list of its columns and their types.

Every event table of cascope (detected events, simulated ground truth, feature tables, the rows
of the mSCT HDF5 training layout) starts with the same columns; each producer appends its own
named group. Readers that need only part of a table take a named subset from here.

The schema sits in ``io`` (the lowest layer that reads and writes tables) so that every stage
that writes or reads events (simulate, metrics, events, features, the HDF5 layout) imports it
without importing against the flow.
"""

from __future__ import annotations

#: Weighted centroid of an event: frame, row, column (float).
CENTROID_COLUMNS: tuple[str, ...] = ("t", "y", "x")

#: Bounding box of an event's voxels in frames and pixels, end exclusive (int).
BOX_COLUMNS: tuple[str, ...] = ("t_start", "t_end", "y_start", "y_end", "x_start", "x_end")

#: The columns every event table starts with: id, centroid, bounding box, voxel count.
EVENT_COLUMNS: tuple[str, ...] = ("id", *CENTROID_COLUMNS, *BOX_COLUMNS, "area")

#: Score columns a detector appends (probability or z-score under the event's voxels).
SCORE_COLUMNS: tuple[str, ...] = ("score_mean", "score_max")

#: A detected event: :data:`EVENT_COLUMNS` then :data:`SCORE_COLUMNS`.
DETECTION_COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS, *SCORE_COLUMNS)

#: What a simulation planted, appended to :data:`EVENT_COLUMNS` in its ground truth.
SIMULATION_COLUMNS: tuple[str, ...] = (
    "amplitude",
    "radius",
    "t_onset",
    "t_peak",
    "decay_frames",
    "dendrite",
)

#: A simulated ground-truth event: :data:`EVENT_COLUMNS` then :data:`SIMULATION_COLUMNS`.
TRUTH_COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS, *SIMULATION_COLUMNS)

#: Row of the ``events`` array of the mSCT HDF5 layout: the id and the bounding box, under the
#: layout's own names (``t1, t2`` = ``t_start, t_end`` and so on; int64).
MSCT_H5_COLUMNS: tuple[str, ...] = ("id", "t1", "t2", "y1", "y2", "x1", "x2")

#: Table column of each column of the HDF5 layout.
MSCT_H5_NAMES: dict[str, str] = dict(zip(MSCT_H5_COLUMNS, ("id", *BOX_COLUMNS), strict=True))

#: NumPy type of each column above.
DTYPES: dict[str, str] = {
    "id": "int64",
    **dict.fromkeys(CENTROID_COLUMNS, "float64"),
    **dict.fromkeys(BOX_COLUMNS, "int64"),
    "area": "int64",
    **dict.fromkeys(SCORE_COLUMNS, "float64"),
    "amplitude": "float64",
    "radius": "float64",
    "t_onset": "int64",
    "t_peak": "int64",
    "decay_frames": "float64",
    "dendrite": "int64",
    **dict.fromkeys(MSCT_H5_COLUMNS, "int64"),
}
