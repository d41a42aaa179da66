"""Studies on a Dask cluster: a manifest of recordings → per-recording folders → study tables.

``run_study`` runs ``cascope run``'s pipeline on every recording of a manifest on a Dask client
(an embedded ``LocalCluster`` by default, a running scheduler, or a dask-jobqueue cluster on
SLURM/PBS/LSF/SGE), skips recordings already complete for the same input and configuration,
and writes one events table for the study, the comparison of its conditions with the
recording (or the subject) as the statistical unit, and ``study.json``.

``denoise_distributed`` splits one movie larger than a machine into time blocks with halos;
each worker writes its own chunk-aligned region of the output OME-Zarr. ``detect_distributed``
detects events in such a movie with an event model, each event counted by the block that owns
its first frame.
"""

from cascope.study.cluster import (
    ClusterConfig,
    jobqueue_cluster,
    load_cluster_config,
    local_cluster,
    study_client,
)
from cascope.study.detect import detect_distributed
from cascope.study.manifest import Recording, read_manifest
from cascope.study.movie import denoise_distributed
from cascope.study.run import StudyResult, run_study, study_config

__all__ = [
    "ClusterConfig",
    "Recording",
    "StudyResult",
    "denoise_distributed",
    "detect_distributed",
    "jobqueue_cluster",
    "load_cluster_config",
    "local_cluster",
    "read_manifest",
    "run_study",
    "study_client",
    "study_config",
]
