"""Shared fixtures: seeded random generators, the real example files, a synthesised LIF file."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run torch on one thread: small test models gain nothing from more, and on a busy 2-core
    machine OpenMP threads that wait on each other slow the whole suite down many times over."""
    try:
        import torch
    except ImportError:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request: pytest.FixtureRequest) -> str:
    """Where a network test computes: the CPU in every run, a CUDA device in ``-m gpu`` runs.

    The default test command deselects ``gpu``; ``python -m pytest -m gpu`` on a machine with
    a GPU runs the same tests, with the same assertions, on CUDA.
    """
    if request.param == "cuda":
        _need_cuda()
    return str(request.param)


@pytest.fixture
def cuda() -> str:
    """A CUDA device, for tests of CUDA-only paths (marked ``gpu`` themselves)."""
    _need_cuda()
    return "cuda"


def _need_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def real_data() -> Path:
    """Folder of real example recordings; tests using it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real example data not found at {REAL_DATA} (a plain clone has no ../shared)")
    return REAL_DATA


# A Leica LIF file synthesised byte by byte (no real LIF file is in the shared data).
_MAGIC = struct.pack("<I", 0x70)
_MEM = b"\x2a"


def _block(description: str, payload: bytes) -> bytes:
    desc = description.encode("utf-16-le")
    head = _MAGIC + struct.pack("<I", 0) + _MEM + struct.pack("<I", len(payload)) + _MEM
    return head + struct.pack("<I", len(description)) + desc + payload


def _image_xml(
    name: str, arr: NDArray, bits: int, voxel_um: Sequence[float], dt: float, block_id: str
) -> str:
    """XML of one image; ``arr`` is (T, C, Z, Y, X), stored planes ordered t, z, c."""
    nt, nc, nz, ny, nx = arr.shape
    bpp = arr.dtype.itemsize
    plane = nx * ny * bpp
    vz, vy, vx = voxel_um
    chans = "".join(
        f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="{bits}" '
        f'NameOfMeasuredQuantity="" Min="0" Max="{2**bits - 1}" Unit="" LUTName="Gray" '
        f'IsLUTInverted="0" BytesInc="{c * plane}" BitInc="0"/>'
        for c in range(nc)
    )
    dims = [
        (1, nx, (nx - 1) * vx * 1e-6, "m", bpp),
        (2, ny, (ny - 1) * vy * 1e-6, "m", nx * bpp),
        (3, nz, (nz - 1) * vz * 1e-6, "m", nc * plane),
        (4, nt, (nt - 1) * dt, "s", nc * nz * plane),
    ]
    dim_xml = "".join(
        f'<DimensionDescription DimID="{i}" NumberOfElements="{n}" Origin="0" '
        f'Length="{length}" Unit="{unit}" BitInc="0" BytesInc="{inc}"/>'
        for i, n, length, unit, inc in dims
        if n > 1 or i in (1, 2)
    )
    return (
        f'<Element Name="{name}" Visibility="1" CopyOption="1" UniqueID="{block_id}">'
        f'<Data><Image TextDescription=""><ImageDescription><Channels>{chans}</Channels>'
        f"<Dimensions>{dim_xml}</Dimensions></ImageDescription></Image></Data>"
        f'<Memory Size="{arr.nbytes}" MemoryBlockID="{block_id}"/><Children/></Element>'
    )


def write_lif(
    path: Path,
    images: dict[str, tuple[NDArray, int]],
    voxel_um: Sequence[float] = (2.0, 0.5, 0.25),
    dt: float = 0.1,
) -> Path:
    """Write a minimal LIF: header block with the XML, a zero-size project block, image blocks.

    ``images`` maps a series name to ``(array (T, C, Z, Y, X), bit depth)``.
    """
    children = "".join(
        _image_xml(name, arr, bits, voxel_um, dt, f"MemBlock_{i + 1}")
        for i, (name, (arr, bits)) in enumerate(images.items())
    )
    xml = (
        '<LMSDataContainerHeader Version="2"><Element Name="project" Visibility="1" '
        'CopyOption="1" UniqueID="root"><Data><Experiment Path="project.lif"/></Data>'
        f'<Memory Size="0" MemoryBlockID="MemBlock_0"/><Children>{children}</Children>'
        "</Element></LMSDataContainerHeader>"
    )
    xml_bytes = xml.encode("utf-16-le")
    header = _MAGIC + struct.pack("<I", len(xml_bytes) + 5) + _MEM + struct.pack("<I", len(xml))
    out = bytearray(header + xml_bytes)
    out += _block("MemBlock_0", b"")
    for i, (arr, _) in enumerate(images.values()):
        planes = np.ascontiguousarray(arr.transpose(0, 2, 1, 3, 4)).astype(
            arr.dtype.newbyteorder("<")
        )
        out += _block(f"MemBlock_{i + 1}", planes.tobytes())
    path.write_bytes(bytes(out))
    return path


@pytest.fixture
def make_lif(tmp_path: Path) -> Callable[..., Path]:
    """Return ``make_lif(images, name="synth.lif", **kw)`` writing a LIF file under tmp_path."""

    def make(images: dict[str, tuple[NDArray, int]], name: str = "synth.lif", **kw: object) -> Path:
        return write_lif(tmp_path / name, images, **kw)  # type: ignore[arg-type]

    return make
