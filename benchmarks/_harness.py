"""What every benchmark script shares: test movies, measured child processes, peers, results.

- :func:`write_movie` streams a test movie to a file (TIFF, HDF5 or OME-Zarr by suffix) one
  block at a time, from a function that makes any range of frames.
- :func:`run_measured` runs a command in a child process and reports its wall time, CPU time
  and peak resident memory, with one meaning everywhere (see :class:`ChildRun`).
- :class:`Peer` is a peer tool (DeepCAD-RT, CAREamics, StarDist) in its own virtual environment
  under ``benchmarks/.peer-venv/NAME``: where its Python is, and how to make that environment.
- :func:`table` renders a markdown table and :func:`write_results` writes ``NAME.json`` and
  ``NAME.md`` (to ``benchmarks/results`` unless told otherwise).

Scripts run as modules from the repository root (``python -m benchmarks.NAME``); a script that
starts itself again in a child process uses :func:`module_cmd` and :func:`child_env`, which
work from any working directory.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger("benchmarks")

#: The benchmarks folder, the repository root and the committed results.
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
#: Peer environments (git-ignored): ``benchmarks/.peer-venv/NAME``.
PEER_VENVS = BENCH / ".peer-venv"


# ---------------------------------------------------------------------------------------------
# test movies


def write_movie(
    path: Path,
    shape: tuple[int, int, int],
    frames: Callable[[int, int], NDArray[Any]],
    *,
    block: int = 64,
    dtype: Any = np.uint16,
    frame_rate: float = 30.0,
    **fmt: Any,
) -> None:
    """Write a (T, Y, X) movie block by block: memory is one block whatever the length.

    Parameters
    ----------
    path : Path
        The file; its suffix picks the format (``.tif``, ``.h5``, ``.zarr``), as
        :func:`cascope.io.open_writer` does.
    shape : (int, int, int)
        (T, Y, X).
    frames : callable
        ``frames(start, stop)`` returns frames ``start..stop`` as an array ``(stop - start, Y,
        X)``; it is cast to ``dtype`` (values are clipped to its range for integers).
    block : int
        Frames per call of ``frames`` and per write.
    dtype : numpy dtype
        Stored type (default uint16, as microscopes write).
    frame_rate : float
        Frames per second recorded in the file.
    **fmt
        Format options passed to :func:`cascope.io.open_writer` (e.g. ``chunks`` for Zarr).
    """
    from cascope.io import open_writer

    dt = np.dtype(dtype)
    n = int(shape[0])
    with open_writer(path, tuple(shape), dt, axes="TYX", frame_rate=frame_rate, **fmt) as writer:
        for start in range(0, n, block):
            stop = min(n, start + block)
            data = np.asarray(frames(start, stop))
            if dt.kind in "ui":
                info = np.iinfo(dt)
                data = np.clip(data, info.min, info.max)
            writer.write(data.astype(dt, copy=False), start)


def poisson_frames(background: NDArray[Any], seed: int) -> Callable[[int, int], NDArray[np.uint16]]:
    """Shot noise on a fixed background: ``frames(start, stop)`` for :func:`write_movie`.

    The frames drawn depend on the seed and the calls made, in order: write a movie once.
    """
    rng = np.random.default_rng(seed)

    def frames(start: int, stop: int) -> NDArray[np.uint16]:
        return rng.poisson(background, size=(stop - start, *background.shape)).astype(np.uint16)

    return frames


# ---------------------------------------------------------------------------------------------
# child processes


def module_cmd(name: str, *args: str) -> list[str]:
    """The command that runs ``benchmarks.NAME`` with this Python (use with :func:`child_env`)."""
    return [sys.executable, "-m", f"benchmarks.{name}", *args]


def child_env(
    threads: int | None = None, *, gpu: bool | None = None, **extra: str
) -> dict[str, str]:
    """This process's environment for a child, with the repository root on ``PYTHONPATH``.

    Parameters
    ----------
    threads : int, optional
        Sets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``.
    gpu : bool, optional
        ``False`` hides every GPU (``CUDA_VISIBLE_DEVICES=""``), so a CPU run stays on the CPU
        on any machine; ``None`` or ``True`` leave the visible devices as they are.
    **extra : str
        More variables.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if gpu is False:
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.update(extra)
    return env


def own_peak_rss() -> int:
    """This process's own resident-memory high-water mark (``VmHWM``, bytes; -1 if unknown).

    A child started by a benchmark prints it (in the last JSON line of its output) so that
    :func:`run_measured` can report it beside the kernel's number, as a cross-check.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


#: Starts the command, waits for it with ``wait4`` and writes its rusage to a file. A process's
#: peak RSS (``ru_maxrss``) counts the image of the process it was forked from, so commands are
#: started from this small launcher (``python -S``, about 10 MiB), never from the benchmark
#: itself (which may hold movies and torch). On Linux the command and the launcher get SIGTERM
#: when their parent dies, so a benchmark that is killed leaves no command running.
_LAUNCH = (
    "import json, os, signal, subprocess, sys\n"
    "def orphan_dies():\n"
    "    try:\n"
    "        import ctypes\n"
    "        ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "    except (OSError, AttributeError):\n"
    "        pass\n"
    "orphan_dies()\n"
    "p = subprocess.Popen(sys.argv[2:], preexec_fn=orphan_dies)\n"
    "signal.signal(signal.SIGTERM, lambda *_: p.terminate())\n"
    "_, status, u = os.wait4(p.pid, 0)\n"
    "open(sys.argv[1], 'w').write(json.dumps([u.ru_maxrss, u.ru_utime, u.ru_stime]))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


@dataclass
class ChildRun:
    """What :func:`run_measured` measured of one command.

    Attributes
    ----------
    returncode : int
        The command's exit status.
    wall_s : float
        Wall-clock seconds from start to exit (includes waiting for a shared CPU).
    user_s, system_s : float
        CPU seconds of the command (and the children it waited for).
    peak_rss_bytes : int
        Peak resident memory of the command's process: the kernel's high-water mark
        (``ru_maxrss`` from ``wait4``) of that process, started from a small launcher so that
        the benchmark's own memory is not counted. It never reads below the launcher's own
        image (about 10 MiB); processes the command starts and does not wait for (Dask
        workers) are not in it.
    output : str
        The last 3000 characters of its standard output and error (empty with a log file).
    facts : dict
        The last line of its output that parses as a JSON object (a child's own report).
    rss_samples : list of (float, int)
        (seconds, RSS bytes) every ``sample_s`` seconds, when asked for.
    """

    returncode: int
    wall_s: float
    user_s: float
    system_s: float
    peak_rss_bytes: int
    output: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def peak_rss_mib(self) -> float:
        """:attr:`peak_rss_bytes` in MiB."""
        return self.peak_rss_bytes / 2**20

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds."""
        return self.user_s + self.system_s

    @property
    def vmhwm_bytes(self) -> int:
        """The child's own ``VmHWM`` as it reported it (:func:`own_peak_rss`); -1 if it did not."""
        return int(self.facts.get("vmhwm_bytes", -1))

    def summary(self) -> dict[str, Any]:
        """Exit code, times and both peaks as a dict for JSON."""
        return {
            "returncode": self.returncode,
            "wall_s": self.wall_s,
            "user_s": self.user_s,
            "system_s": self.system_s,
            "peak_rss_bytes": self.peak_rss_bytes,
            "vmhwm_bytes": self.vmhwm_bytes,
        }


def _rss_of_children(pid: int) -> int:
    """Resident memory (bytes) of the first child of ``pid`` (the command under the launcher)."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not kids:
            return -1
        for line in Path(f"/proc/{kids[0]}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def _sample(pid: int, every: float, out: list[tuple[float, int]], stop: threading.Event) -> None:
    t0 = time.perf_counter()
    while not stop.is_set():
        rss = _rss_of_children(pid)
        if rss >= 0:
            out.append((time.perf_counter() - t0, rss))
        stop.wait(every)


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
    sample_s: float | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> ChildRun:
    """Run ``cmd`` in a child process; measure its wall time, CPU time and peak memory.

    Parameters
    ----------
    cmd : sequence of str
        The command.
    env : dict, optional
        Its environment (default: :func:`child_env`).
    log_file : Path, optional
        Write its output here instead of keeping the tail in memory.
    sample_s : float, optional
        Also sample its resident memory this often (a profile over the run).
    cwd : Path, optional
        Its working directory.
    check : bool
        Raise ``RuntimeError`` (with the tail of the output) when it exits non-zero.

    Returns
    -------
    ChildRun
        See its attributes for what each number means.
    """
    cmd = [str(c) for c in cmd]
    with tempfile.TemporaryDirectory(prefix="cascope-bench-") as tmp:
        usage_file = Path(tmp) / "rusage.json"
        full = [sys.executable, "-S", "-c", _LAUNCH, str(usage_file), *cmd]
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        sink = log_file.open("w") if log_file is not None else None
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                full,
                env=child_env() if env is None else env,
                cwd=cwd,
                stdout=sink if sink is not None else subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            sampler = None
            if sample_s:
                sampler = threading.Thread(
                    target=_sample, args=(proc.pid, sample_s, samples, stop), daemon=True
                )
                sampler.start()
            # the pipe is drained while the child runs, or a chatty child blocks on a full pipe
            raw = proc.stdout.read() if proc.stdout is not None else b""
            code = proc.wait()
            wall = time.perf_counter() - t0
            stop.set()
            if sampler is not None:
                sampler.join()
        finally:
            if sink is not None:
                sink.close()
        text = raw.decode(errors="replace")
        if log_file is not None:
            text = log_file.read_text(errors="replace")
        if usage_file.is_file():
            maxrss, user, system = json.loads(usage_file.read_text())
        else:  # the launcher itself failed
            maxrss, user, system = -1, 0.0, 0.0
    if check and code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{text[-3000:]}")
    return ChildRun(
        returncode=code,
        wall_s=wall,
        user_s=float(user),
        system_s=float(system),
        peak_rss_bytes=int(maxrss) * 1024 if maxrss >= 0 else -1,
        output="" if log_file is not None else text[-3000:],
        facts=_last_json(text),
        rss_samples=samples,
    )


@contextmanager
def local_cluster(workers: int) -> Iterator[tuple[Any, Any]]:
    """A Dask ``LocalCluster`` of single-threaded worker processes on 127.0.0.1, and a client."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield cluster, client


# ---------------------------------------------------------------------------------------------
# peers


@dataclass(frozen=True)
class Peer:
    """A peer tool in a virtual environment of its own (never a dependency of cascope).

    Attributes
    ----------
    name : str
        Folder name under ``benchmarks/.peer-venv`` (``deepcad``, ``careamics``, ``stardist``).
    env_var : str
        Environment variable that may name the peer's Python instead.
    packages : tuple of str
        Installed into the environment with torch pinned to this project's version.
    no_deps : tuple of str
        Installed first, without their dependencies (a peer whose own pins clash).
    torch : str or None
        The torch requirement of the environment (``None``: a peer without torch).
    """

    name: str
    env_var: str
    packages: tuple[str, ...]
    no_deps: tuple[str, ...] = ()
    torch: str | None = "torch==2.13.0"

    @property
    def venv(self) -> Path:
        """The default environment folder."""
        return PEER_VENVS / self.name

    def python(self, given: str | None = None) -> str | None:
        """The peer's Python: ``given``, else ``$ENV_VAR``, else the default venv's; or None."""
        cand = given or os.environ.get(self.env_var)
        if cand is None and (self.venv / "bin" / "python").exists():
            cand = str(self.venv / "bin" / "python")
        return cand

    def setup(self, venv: Path | None = None) -> Path:
        """Create the environment (``python3 -m venv``, torch, the packages); return its folder."""
        venv = self.venv if venv is None else venv
        pip = [str(venv / "bin" / "pip"), "install", "-q"]
        steps = [["python3", "-m", "venv", str(venv)]]
        steps += [[*pip, self.torch]] if self.torch else []
        steps += [[*pip, *self.no_deps, "--no-deps"]] if self.no_deps else []
        for cmd in steps:
            log.info("+ %s", " ".join(cmd))
            subprocess.run(cmd, check=True)
        cmd = [*pip, *self.packages]
        if self.torch:  # the peer's own pins may not move torch
            constraints = venv / "constraints.txt"
            constraints.write_text(self.torch + "\n")
            cmd = [*pip, "-c", str(constraints), *self.packages]
        log.info("+ %s", " ".join(cmd))
        subprocess.run(cmd, check=True)
        return venv


# ---------------------------------------------------------------------------------------------
# results

#: How every denoising table writes the scores of :func:`cascope.metrics.score_denoising`.
SCORE_FORMAT = {"si_psnr": ".2f", "si_psnr_gain": "+.2f", "psnr": ".2f", "ssim": ".3f"}
SCORE_FORMAT["trace_corr"] = ".3f"


def score_cells(row: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """Table cells of the denoising scores ``keys`` of a result row, in one format everywhere."""
    return [format(row[k], SCORE_FORMAT[k]) for k in keys]


def gpu_name() -> str:
    """The CUDA device's name and memory, as torch reports them."""
    import torch

    props = torch.cuda.get_device_properties(0)
    return f"{props.name}, {props.total_memory / 2**30:.0f} GiB"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, align: str = "") -> list[str]:
    """A markdown table as lines.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : iterable of sequences
        Cells, already formatted (anything else is written with ``str``).
    align : str
        One letter per column, ``l`` (left) or ``r`` (right); missing letters mean left.

    Returns
    -------
    list of str

    Examples
    --------
    >>> table(["method", "dB"], [["gaussian", "32.33"]], align="lr")
    ['| method | dB |', '|---|---:|', '| gaussian | 32.33 |']
    """
    rule = ["---:" if align[i : i + 1] == "r" else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    for row in rows:
        cells = [str(c) for c in row]
        if len(cells) != len(header):
            raise ValueError(f"a row of {len(cells)} cells in a table of {len(header)} columns")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as plain Python for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_results(
    name: str, doc: Any, markdown: str | Sequence[str], *, out: Path | None = None
) -> tuple[Path, Path]:
    """Write ``NAME.json`` (indented) and ``NAME.md``; return their paths.

    Parameters
    ----------
    name : str
        File name without suffix.
    doc : JSON-serialisable
        The results.
    markdown : str or sequence of str
        The report, as text or lines.
    out : Path, optional
        The folder (created if needed); default ``benchmarks/results``.
    """
    out = RESULTS if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown if isinstance(markdown, str) else "\n".join(markdown)
    paths = out / f"{name}.json", out / f"{name}.md"
    for path, body in (
        (paths[0], json.dumps(doc, indent=2, default=_plain) + "\n"),
        (paths[1], text.rstrip("\n") + "\n"),
    ):
        part = path.with_name(f".{path.name}.part")  # a killed run never leaves half a file
        part.write_text(body)
        part.replace(path)
    log.info("wrote %s and %s", *paths)
    return paths


def quick_out(quick: bool, out: Path | None = None) -> Path:
    """Where results go: ``out`` if given, else ``benchmarks/results`` (a scratch folder if quick).

    A ``--quick`` run checks that a script works: without an explicit ``out`` its numbers go to
    a new temporary folder and never replace the committed ones.
    """
    if out is not None:
        return Path(out)
    return Path(tempfile.mkdtemp(prefix="cascope-bench-quick-")) if quick else RESULTS
