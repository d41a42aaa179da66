"""Readers and writers for TIFF/OME-TIFF, HDF5, Zarr/OME-Zarr and Leica LIF, all lazy.

Every reader returns a :class:`Movie` (``Volume`` is the same class) with explicit axes, voxel size
and frame rate where the file has them. Writers are atomic and never overwrite an input.
"""

from cascope.io._atomic import atomic_output, check_output
from cascope.io._movie import Movie, Volume, as_movie, check_finite, validate_axes

__all__ = [
    "Movie",
    "Volume",
    "as_movie",
    "atomic_output",
    "check_finite",
    "check_output",
    "validate_axes",
]
