"""Where a study runs: an embedded ``LocalCluster``, a running scheduler, or an HPC queue.

* Nothing given: a ``LocalCluster`` of worker processes sized to this machine, one worker per
  GPU with that GPU pinned to it (``CUDA_VISIBLE_DEVICES``), else one single-threaded worker per
  core that the memory allows.
* ``scheduler``: the address of a running scheduler (``tcp://host:8786``) or its scheduler file.
* ``cluster``: a ``cluster.yaml`` for dask-jobqueue (SLURM, PBS, LSF, SGE), scaled adaptively
  between ``minimum_jobs`` and ``maximum_jobs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascope.errors import InputError

log = logging.getLogger(__name__)

#: Memory a worker needs for one recording of typical size (bytes); sets the local worker count.
WORKER_MEMORY = 2 << 30

_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster", "sge": "SGECluster"}


class ClusterConfig(BaseModel):
    """A batch-queue cluster for dask-jobqueue, as written in ``cluster.yaml``.

    Examples
    --------
    >>> cfg = ClusterConfig.model_validate(
    ...     {"kind": "slurm", "queue": "gpu", "cores": 8, "memory": "32GB", "gpus": 1}
    ... )
    >>> cfg.maximum_jobs
    4
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["slurm", "pbs", "lsf", "sge"] = Field(description="The batch system.")
    queue: str | None = Field(default=None, description="Queue (SLURM: partition).")
    account: str | None = Field(default=None, description="Account or project charged.")
    walltime: str | None = Field(default=None, description="Per job, e.g. '02:00:00'.")
    cores: int = Field(default=1, ge=1, description="CPU cores per job.")
    memory: str = Field(default="8GB", description="Memory per job, e.g. '32GB'.")
    processes: int = Field(
        default=1, ge=1, description="Dask workers per job (one per GPU when GPUs are given)."
    )
    gpus: int = Field(
        default=0,
        ge=0,
        description="GPUs per job; each job then runs one worker on them (on SLURM with one "
        "thread: one recording at a time per GPU, the job's cores booked for it).",
    )
    job_name: str = Field(default="cascope", description="Name of the jobs in the queue.")
    job_extra_directives: list[str] = Field(
        default_factory=list, description="Further scheduler directives, e.g. '--qos=long'."
    )
    job_script_prologue: list[str] = Field(
        default_factory=list,
        description="Shell lines run before the worker starts (module load, venv activation).",
    )
    python: str | None = Field(default=None, description="Python of the workers (default: this).")
    local_directory: str | None = Field(default=None, description="Node-local scratch folder.")
    log_directory: str | None = Field(default=None, description="Folder for the job logs.")
    interface: str | None = Field(default=None, description="Network interface, e.g. 'ib0'.")
    minimum_jobs: int = Field(default=0, ge=0, description="Adaptive scaling: fewest jobs.")
    maximum_jobs: int = Field(default=4, ge=1, description="Adaptive scaling: most jobs.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Any other keyword of the dask-jobqueue cluster class."
    )

    def cluster_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the dask-jobqueue cluster class."""
        directives = list(self.job_extra_directives)
        processes = self.processes
        if self.gpus:
            processes = 1
            gpu_line = {
                "slurm": f"--gres=gpu:{self.gpus}",
                "pbs": f"-l ngpus={self.gpus}",
                "lsf": f'-gpu "num={self.gpus}"',
                "sge": f"-l gpu={self.gpus}",
            }[self.kind]
            directives.append(gpu_line)
        kw: dict[str, Any] = {
            "cores": self.cores,
            "memory": self.memory,
            "processes": processes,
            "job_name": self.job_name,
            "job_extra_directives": directives,
            "job_script_prologue": list(self.job_script_prologue),
        }
        for key in ("queue", "walltime", "python", "local_directory", "log_directory"):
            value = getattr(self, key)
            if value is not None:
                kw[key] = value
        if self.interface is not None:
            kw["interface"] = self.interface
        if self.account is not None:
            kw["account" if self.kind in ("slurm", "pbs") else "project"] = self.account
        if self.gpus and self.kind == "slurm":
            # one task at a time per GPU: one worker thread, all the cores booked for it
            kw.update(cores=1, job_cpu=self.cores)
        kw.update(self.options)
        return kw


def load_cluster_config(path: str | Path) -> ClusterConfig:
    """Read a ``cluster.yaml``; a bad key or value is one line naming the file."""
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as err:
        raise InputError(f"cannot be read ({err.strerror}); check --cluster", p) from None
    except yaml.YAMLError as err:
        raise InputError(f"is not valid YAML: {' '.join(str(err).split())}", p) from None
    if not isinstance(doc, dict):
        raise InputError("is not a cluster description (expected key: value lines)", p)
    try:
        return ClusterConfig.model_validate(doc)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise InputError(f"{problems} (check --cluster)", p) from None


def jobqueue_cluster(config: ClusterConfig, **kwargs: Any) -> Any:
    """Build (not scale) the dask-jobqueue cluster of ``config``; ``.job_script()`` shows a job."""
    import dask_jobqueue

    cls = getattr(dask_jobqueue, _JOBQUEUE[config.kind])
    return cls(**config.cluster_kwargs(), **kwargs)


def _gpu_count() -> int:
    """GPUs this machine has, without initialising CUDA in this process when there is none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return 0
    try:
        import torch

        return int(torch.cuda.device_count())
    except (ImportError, RuntimeError):
        return 0


def local_cluster(
    *, workers: int | None = None, threads: int = 1, dashboard: str = ":8787", **kwargs: Any
) -> Any:
    """Start an embedded cluster of worker processes on this machine, sized to it.

    One worker per GPU, each pinned to its GPU; without GPUs, ``workers`` processes (default:
    one per core, as many as the memory gives :data:`WORKER_MEMORY` each) of ``threads``
    threads.
    """
    import psutil
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    gpus = _gpu_count() if workers is None else 0
    total = psutil.virtual_memory().total
    if gpus:
        per = total // gpus
        options = {"nthreads": threads, "memory_limit": per}
        spec = {
            f"gpu-{i}": {
                "cls": Nanny,
                "options": {**options, "env": {"CUDA_VISIBLE_DEVICES": str(i)}},
            }
            for i in range(gpus)
        }
        scheduler = {
            "cls": Scheduler,
            "options": {"host": "127.0.0.1", "dashboard_address": dashboard},
        }
        return SpecCluster(
            workers=spec, scheduler=scheduler, **{"silence_logs": logging.ERROR, **kwargs}
        )
    cores = os.cpu_count() or 1
    n = workers or max(1, min(cores // threads, int(total // WORKER_MEMORY)))
    return LocalCluster(
        n_workers=n,
        threads_per_worker=threads,
        processes=True,
        host="127.0.0.1",
        dashboard_address=dashboard,
        memory_limit=max(total // n, WORKER_MEMORY),
        **{"silence_logs": logging.ERROR, **kwargs},
    )


@contextlib.contextmanager
def study_client(
    *,
    scheduler: str | None = None,
    cluster: str | Path | ClusterConfig | None = None,
    workers: int | None = None,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Yield a Dask client and a description of where it runs (for ``study.json``).

    Parameters
    ----------
    scheduler : str, optional
        ``tcp://host:port`` of a running scheduler, or the path of its scheduler file.
    cluster : str, Path or ClusterConfig, optional
        A dask-jobqueue ``cluster.yaml`` (or its parsed form).
    workers : int, optional
        Local worker processes (default: sized to the machine).
    """
    from distributed import Client

    if scheduler is not None and cluster is not None:
        raise InputError("give --scheduler or --cluster, not both")
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            if Path(scheduler).is_file():
                client = stack.enter_context(Client(scheduler_file=str(scheduler)))
            elif "://" in scheduler or ":" in scheduler:
                try:
                    client = stack.enter_context(Client(scheduler, timeout="30s"))
                except OSError as err:
                    raise InputError(
                        f"no Dask scheduler answers at {scheduler} ({err}); check --scheduler"
                    ) from None
            else:
                raise InputError(
                    f"--scheduler {scheduler!r} is neither an address (tcp://host:8786) nor a "
                    "scheduler file"
                )
            info: dict[str, Any] = {"kind": "scheduler"}
        elif cluster is not None:
            cfg = cluster if isinstance(cluster, ClusterConfig) else load_cluster_config(cluster)
            jq = stack.enter_context(jobqueue_cluster(cfg))
            jq.adapt(minimum_jobs=cfg.minimum_jobs, maximum_jobs=cfg.maximum_jobs)
            client = stack.enter_context(Client(jq))
            info = {
                "kind": "jobqueue",
                "system": cfg.kind,
                "minimum_jobs": cfg.minimum_jobs,
                "maximum_jobs": cfg.maximum_jobs,
            }
        else:
            lc = stack.enter_context(local_cluster(workers=workers))
            client = stack.enter_context(Client(lc))
            info = {"kind": "local"}
        info["address"] = str(client.scheduler.address)
        info["dashboard"] = client.dashboard_link
        info["workers"] = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        log.info("dask dashboard: %s", client.dashboard_link)
        yield client, info
