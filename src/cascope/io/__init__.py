"""Readers and writers for TIFF/OME-TIFF, HDF5, Zarr/OME-Zarr and Leica LIF, all lazy.

Every reader returns a :class:`Movie` (``Volume`` is the same class) with explicit axes, voxel size
and frame rate where the file has them. Writers are atomic and never overwrite an input.
"""

from cascope.io._api import (
    BlockWriter,
    missing_chunks_default,
    open_writer,
    open_writer_like,
    read,
    select_channel,
    write,
)
from cascope.io._atomic import (
    TABLE_SUFFIXES,
    atomic_output,
    check_output,
    check_outputs,
    check_table_path,
    output_fault,
    output_lock,
    remove_stale_temporaries,
    replace_output,
    temp_path,
)
from cascope.io._blocks import cast_block
from cascope.io._formats import detect_format, recording_stem
from cascope.io._movie import Movie, Volume, as_movie, check_finite, validate_axes
from cascope.io.msct_h5 import MsctStream, read_msct_h5, write_msct_h5
from cascope.io.zarr import read_labels

__all__ = [
    "TABLE_SUFFIXES",
    "BlockWriter",
    "Movie",
    "MsctStream",
    "Volume",
    "as_movie",
    "atomic_output",
    "cast_block",
    "check_finite",
    "check_output",
    "check_outputs",
    "check_table_path",
    "detect_format",
    "missing_chunks_default",
    "open_writer",
    "open_writer_like",
    "output_fault",
    "output_lock",
    "read",
    "read_labels",
    "read_msct_h5",
    "recording_stem",
    "remove_stale_temporaries",
    "replace_output",
    "select_channel",
    "temp_path",
    "validate_axes",
    "write",
    "write_msct_h5",
]
