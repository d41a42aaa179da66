"""Per-structure measurements: skeleton length, branches, diameter, tortuosity, FRET ratio."""

from cascope.morphology.fret import fret_ratios
from cascope.morphology.measure import measure_structures, plot_measurements, write_table
from cascope.morphology.skeleton import skeleton_measurements

__all__ = [
    "fret_ratios",
    "measure_structures",
    "plot_measurements",
    "skeleton_measurements",
    "write_table",
]
