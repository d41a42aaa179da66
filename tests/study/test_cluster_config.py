"""A SLURM ``cluster.yaml`` becomes the job script dask-jobqueue submits (no SLURM needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascope.errors import InputError
from cascope.study import jobqueue_cluster, load_cluster_config

SLURM_YAML = """\
kind: slurm
queue: gpu
account: imaging-lab
walltime: "02:00:00"
cores: 8
memory: 32GB
gpus: 1
job_extra_directives: ["--qos=normal"]
job_script_prologue:
  - module load cuda/12.4
  - source ~/cascope-env/bin/activate
minimum_jobs: 0
maximum_jobs: 8
"""


def test_slurm_cluster_yaml_gives_the_expected_job_script(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(SLURM_YAML)
    cfg = load_cluster_config(path)
    assert (cfg.minimum_jobs, cfg.maximum_jobs) == (0, 8)
    cluster = jobqueue_cluster(cfg, scheduler_options={"host": "127.0.0.1"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    for directive in (
        "#SBATCH -J cascope",
        "#SBATCH -p gpu",
        "#SBATCH -A imaging-lab",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=30G",
        "#SBATCH -t 02:00:00",
        "#SBATCH --qos=normal",
        "#SBATCH --gres=gpu:1",
    ):
        assert directive in lines, (directive, script)
    prologue = lines.index("module load cuda/12.4")
    assert lines[prologue + 1] == "source ~/cascope-env/bin/activate"
    worker = lines[-1]
    # one worker per job (per GPU), one recording at a time on it
    assert "distributed.cli.dask_worker" in worker and "--nworkers" not in worker
    assert "--nthreads 1 " in worker and "--nanny" in worker


def test_bad_cluster_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("kind: slurm\nqueue: gpu\ncores: eight\n")
    with pytest.raises(InputError, match=r"cluster.yaml: cores: .*check --cluster"):
        load_cluster_config(path)
    path.write_text("kind: torque\n")
    with pytest.raises(InputError, match="kind"):
        load_cluster_config(path)
