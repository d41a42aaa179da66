"""Out-of-core prediction: read a long recording in blocks with a halo, predict, write each block.

Reading, computing and writing overlap: a background thread reads the next block while the
current one is predicted, and another writes the previous result. Only a few blocks are ever in
memory (the one being read, the one being predicted and the one being written), so peak host
memory depends on the block size, not on the recording's length.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from cascope._progress import progress_bar
from cascope.tiling.cover import Blend
from cascope.tiling.predict import (
    BatchPredictor,
    TorchPredictor,
    predict_tiled,
    predict_tiled_tensor,
)

#: A computed block on its way to the writer: called in the writer thread, it returns the block
#: (waiting for its copy from the device, where there is one).
Fetch = Callable[[], NDArray[Any]]


class BlockWriter(Protocol):
    """Destination of a streamed prediction: blocks arrive in order along the first axis.

    Files are written by :func:`cascope.io.open_writer` (TIFF, HDF5 or Zarr, atomically);
    arrays by :class:`ArrayWriter`.
    """

    def write(self, block: NDArray[Any], start: int) -> None:
        """Store ``block`` at index ``start`` of the first axis."""
        ...


class ArrayWriter:
    """Write blocks into any array supporting slice assignment (ndarray, memmap, zarr).

    Parameters
    ----------
    target : array-like
        The destination, shaped like the prediction.
    axis : int
        The streamed axis of ``target``.
    """

    def __init__(self, target: Any, *, axis: int = 0) -> None:
        self.target = target
        self.axis = axis

    def write(self, block: NDArray[Any], start: int) -> None:
        """Store ``block`` at ``start`` along ``axis``."""
        index: list[Any] = [slice(None)] * len(self.target.shape)
        index[self.axis] = slice(start, start + block.shape[self.axis])
        self.target[tuple(index)] = block


def predict_streamed(
    predict: BatchPredictor,
    data: Any,
    writer: BlockWriter,
    *,
    tile: Sequence[int],
    block: int,
    halo: int | None = None,
    overlap: Sequence[int] | int | float = 0.25,
    batch_size: int = 4,
    blend: Blend = "gaussian",
    postprocess: Callable[[NDArray[np.float32]], NDArray[Any]] | None = None,
    background_io: bool = True,
    progress: bool = False,
) -> None:
    """Predict a recording block by block along its first axis and hand each block to a writer.

    Parameters
    ----------
    predict : callable
        Batch predictor (see :func:`~cascope.tiling.torch_predictor`).
    data : array-like or Movie
        ``(N, ...)`` spatial axes only (no channel axis); read lazily block by block.
    writer : BlockWriter
        Receives ``(owned block, start)`` in order.
    tile : sequence of int
        Tile size per axis.
    block : int
        Planes owned by each block along the first axis.
    halo : int, optional
        Extra planes read on each side for context (default: half the tile along that axis).
    overlap, batch_size, blend
        As in :func:`~cascope.tiling.predict_tiled`.
    postprocess : callable, optional
        Applied to each owned float32 block before writing (de-normalisation, dtype conversion).
    background_io : bool
        Overlap reading, computing and writing: read the next block in a background thread
        while the current one is predicted, and write the previous one in another. ``writer``
        is then called from that thread (one block at a time, in order).
    progress : bool
        Show a rich progress bar.
    """

    def compute(arr: NDArray[Any], inner: slice) -> Fetch:
        pred = predict_tiled(
            predict, arr, tile=tile, overlap=overlap, batch_size=batch_size, blend=blend
        )
        out = pred[inner] if pred.ndim == arr.ndim else pred[:, inner]
        out = postprocess(out) if postprocess is not None else out
        if out.base is not None:  # a view: keep only the owned planes while it waits
            out = out.copy()
        return lambda: out

    blocks = _blocks(data, block, _halo(tile, halo), raw=False)
    stream_through(
        blocks, int(data.shape[0]), compute, writer, background_io=background_io, progress=progress
    )


def predict_streamed_on_device(
    predict: TorchPredictor,
    data: Any,
    writer: BlockWriter,
    *,
    tile: Sequence[int],
    block: int,
    halo: int | None = None,
    overlap: Sequence[int] | int | float = 0.25,
    batch_size: int = 4,
    blend: Blend = "gaussian",
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    postprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    background_io: bool = True,
    progress: bool = False,
) -> None:
    """:func:`predict_streamed` with each block on the network's device.

    The host only reads each block in its stored type and writes the result: the block is
    copied to ``predict.device`` once, and the conversion to float, ``preprocess`` (e.g.
    normalisation), the tiles, their blending and ``postprocess`` (e.g. the output's units and
    type) all run there. On a GPU this leaves the per-voxel work to the GPU; with ``background_io``
    the reader thread also stages each block in pinned (page-locked) memory, and both copies
    run asynchronously, so the GPU computes while the host reads and writes.

    Parameters
    ----------
    predict : TorchPredictor
        The network (:func:`~cascope.tiling.torch_predictor`).
    data, writer, tile, block, halo, overlap, batch_size, blend, background_io, progress
        As in :func:`predict_streamed`.
    preprocess : callable, optional
        Tensor to float32 tensor, applied to each block (with its halo) on the device; default:
        conversion to float32.
    postprocess : callable, optional
        Owned float32 block tensor to the tensor to write (e.g. in the output's type), on the
        device; the result is copied to the host as it is. Default: the float32 block.
    """
    pin = background_io and predict.device.type == "cuda"

    def load(arr: NDArray[Any]) -> tuple[torch.Tensor, int]:
        bits = 8 * arr.itemsize if arr.dtype.kind == "u" and arr.itemsize in (2, 4) else 0
        if bits:  # the same bytes as a signed type: CUDA has few kernels for unsigned ones
            arr = arr.view(arr.dtype.str.replace("u", "i"))
        x = torch.from_numpy(arr)
        return (x.pin_memory() if pin else x), bits

    def compute(loaded: tuple[torch.Tensor, int], inner: slice) -> Fetch:
        x, bits = loaded
        x = x.to(predict.device, non_blocking=pin)
        if bits:  # the unsigned values again, in the next wider signed type
            x = x.to(torch.int32 if bits == 16 else torch.int64) & ((1 << bits) - 1)
        x = preprocess(x) if preprocess is not None else x.float()
        pred = predict_tiled_tensor(
            predict.tensors, x[None], tile=tile, overlap=overlap, batch_size=batch_size, blend=blend
        )[:, inner]
        out = pred[0] if pred.shape[0] == 1 else pred
        return _to_host(postprocess(out) if postprocess is not None else out, pin=pin)

    # ``load`` runs where the blocks are read: in the reader thread with ``background_io``
    read = _blocks(data, block, _halo(tile, halo), raw=True)
    blocks = ((owned, inner, load(arr)) for owned, inner, arr in read)
    stream_through(
        blocks, int(data.shape[0]), compute, writer, background_io=background_io, progress=progress
    )


def _to_host(t: torch.Tensor, *, pin: bool) -> Fetch:
    """Start copying a tensor to the host; the returned call waits for the copy and gives it.

    With ``pin`` (a CUDA tensor) the copy goes asynchronously into pinned memory and the caller
    can queue more work on the GPU at once; a CUDA event marks when the copy is complete.
    """
    if not pin:
        host = t.cpu()
        if host.untyped_storage().nbytes() > host.nbytes:  # a view: keep only its own planes
            host = host.clone()
        return lambda: host.numpy()
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    copied = torch.cuda.Event()
    copied.record()

    def fetch() -> NDArray[Any]:
        copied.synchronize()
        return host.numpy()

    return fetch


def stream_through(
    blocks: Iterator[tuple[slice, slice, Any]],
    total: int,
    compute: Callable[[Any, slice], Fetch],
    writer: BlockWriter,
    *,
    background_io: bool = True,
    progress: bool = False,
    label: str = "predicting",
) -> None:
    """Run blocks through ``compute`` to ``writer`` in order, reading and writing meanwhile.

    With ``background_io`` a reader thread runs ``blocks`` one block ahead, and a writer thread
    fetches and writes each result one block behind, so the three overlap; without, they take
    turns. Errors of either thread are raised here.

    Parameters
    ----------
    blocks : iterator
        ``(owned, inner, block)``: the planes a block owns along the first axis, where they sit
        in the block, and the block with its halo (as :meth:`cascope.io.Movie.iter_blocks`).
    total : int
        Planes in all (for the progress bar).
    compute : callable
        ``compute(block, inner)`` returns a :data:`Fetch` of the owned planes' result.
    writer : BlockWriter
        Receives ``(result, owned.start)`` in order.
    background_io, progress
        As in :func:`predict_streamed`.
    label : str
        Text of the progress bar.
    """
    source = _prefetched(blocks) if background_io else blocks
    with (
        progress_bar(label, total, enabled=progress) as update,
        _written_behind(writer, enabled=background_io) as write,
    ):
        for owned, inner, arr in source:
            write(_finite_result(compute(arr, inner), owned), owned.start)
            update(owned.stop)


def _finite_result(fetch: Fetch, owned: slice) -> Fetch:
    """Refuse a result block holding NaN or infinite values before it is written."""

    def checked() -> NDArray[Any]:
        block = fetch()
        if block.dtype.kind in "fc" and not np.isfinite(block).all():
            from cascope.errors import CascopeError

            bad = np.flatnonzero(~np.isfinite(block).reshape(block.shape[0], -1).all(axis=1))
            raise CascopeError(
                f"the result is not finite (NaN or infinite) in planes "
                f"{owned.start + int(bad[0])}-{owned.start + int(bad[-1])} of block "
                f"{owned.start}-{owned.stop - 1}: the model or its normalisation is broken; "
                "nothing was written"
            )
        return block

    return checked


def _halo(tile: Sequence[int], halo: int | None) -> int:
    """Planes of context on each side: half the tile along the streamed axis by default."""
    return int(tile[0]) // 2 if halo is None else int(halo)


@contextlib.contextmanager
def _written_behind(
    writer: BlockWriter, *, enabled: bool
) -> Iterator[Callable[[Fetch, int], None]]:
    """Write computed blocks in a background thread, one block behind the computation.

    The thread writes block k while block k + 1 is computed. Block k + 1 is handed over only
    once block k is written, so at most two results exist at a time. A failed write is raised
    in the caller at the next hand-over or on leaving; nothing more is written after it.
    """
    if not enabled:
        yield lambda fetch, start: writer.write(fetch(), start)
        return
    pending: queue.Queue[tuple[Fetch, int] | None] = queue.Queue()
    failure: list[BaseException] = []

    def work() -> None:
        while True:
            item = pending.get()
            try:
                if item is None:
                    return
                if not failure:
                    fetch, start = item
                    writer.write(fetch(), start)
            except BaseException as err:  # re-raised in the caller
                failure.append(err)
            finally:
                pending.task_done()

    def hand_over(fetch: Fetch, start: int) -> None:
        pending.join()
        if failure:
            raise failure[0]
        pending.put((fetch, start))

    thread = threading.Thread(target=work, name="cascope-writer", daemon=True)
    thread.start()
    try:
        yield hand_over
        pending.join()
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


def _blocks(
    data: Any, block: int, halo: int, *, raw: bool = False
) -> Iterator[tuple[slice, slice, NDArray[Any]]]:
    """Blocks along the first axis with their halo, as float32 or (``raw``) in the stored type.

    Raw blocks are made native-endian and writable, as ``torch.from_numpy`` needs them. The
    block size is checked at once; the blocks are read as the iterator is advanced.
    """
    spans = block_spans(int(data.shape[0]), block, halo)

    def read(span: tuple[slice, slice]) -> tuple[slice, slice, NDArray[Any]]:
        owned, context = span
        if raw:
            arr = np.asarray(data[context])
            arr = np.require(arr, arr.dtype.newbyteorder("="), requirements=["C", "W"])
        else:
            arr = np.asarray(data[context], dtype=np.float32)
        return owned, slice(owned.start - context.start, owned.stop - context.start), arr

    return map(read, spans)


def block_spans(n: int, block: int, halo: int) -> list[tuple[slice, slice]]:
    """Blocks along an axis of length ``n``: the planes each owns, and those it reads.

    Block ``k`` owns planes ``k * block`` up to ``(k + 1) * block`` (the last one fewer) and
    reads them with ``halo`` planes of context on each side, clipped at the ends. Every plane
    is owned by exactly one block, so blocks computed anywhere (threads, Dask workers) and
    written to their owned planes give the result of one streamed pass.

    Examples
    --------
    >>> [(o.start, o.stop, c.start, c.stop) for o, c in block_spans(10, 4, 1)]
    [(0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10)]
    """
    if block < 1:
        raise ValueError("block must be at least 1")
    spans = []
    for start in range(0, n, block):
        stop = min(start + block, n)
        spans.append((slice(start, stop), slice(max(0, start - halo), min(n, stop + halo))))
    return spans


def _prefetched(it: Iterator[Any]) -> Iterator[Any]:
    """Run an iterator in a thread, one item ahead, so reading overlaps computing."""
    q: queue.Queue[Any] = queue.Queue(maxsize=1)
    done = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def work() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as err:  # re-raised in the consumer
            failure.append(err)
        q.put(done)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                if failure:
                    raise failure[0]
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)
