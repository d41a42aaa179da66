"""A bioimage.io package cascope did not write runs through ``cascope denoise --model``.

The package is built here by hand with ``bioimageio.spec`` in the conventions of CAREamics' N2V
2D exports: axes ``b, c, y, x`` (or ``b, y, x``), sizes ``8 + 8k``, a zero-mean-unit-variance
normalisation with the training data's mean and standard deviation (fixed, along the channel)
and its inverse as ``scale_linear`` postprocessing; the network is a tiny torch model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from tests.cli.test_bad_inputs import run_cli

pytest.importorskip("bioimageio.core")

from cascope.models.package import bioimageio_incompatible


def _incompatible() -> bool:
    import bioimageio.spec
    import pydantic

    return bioimageio_incompatible(bioimageio.spec.__version__, pydantic.VERSION)


pytestmark = pytest.mark.skipif(
    _incompatible(), reason="this bioimageio.spec needs pydantic<2.14 (cascope[bioimageio])"
)

ARCHITECTURE = '''
import torch
from torch import nn


class TinyN2V(nn.Module):
    """Two 3x3 convolutions; takes (B, 1, Y, X) or, without a channel axis, (B, Y, X)."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1)
        )

    def forward(self, x):
        if x.ndim == 3:
            return self.net(x[:, None])[:, 0]
        return self.net(x)
'''

MEAN, STD = 120.0, 15.0


def _network():
    import torch
    from torch import nn

    torch.manual_seed(0)
    namespace: dict = {}
    exec(ARCHITECTURE, namespace)  # the same source the package ships
    net: nn.Module = namespace["TinyN2V"]().eval()
    return net


def _denoise(net, frames: np.ndarray, mean: float, std: float) -> np.ndarray:
    """What the package computes: normalise, the network, restore."""
    import torch

    x = torch.from_numpy(((frames - np.float32(mean)) / np.float32(std + 1e-6))[:, None])
    with torch.inference_mode():
        y = net(x)[:, 0].numpy()
    return y * np.float32(STD) + np.float32(MEAN)


def _build(root: Path, layout: str, normalisation: str) -> object:
    """A CAREamics-style N2V 2D package description (files written under ``root``)."""
    import bioimageio.spec.model.v0_5 as s
    import torch
    from bioimageio.spec import ValidationContext

    net = _network()
    (root / "architecture.py").write_text(ARCHITECTURE)
    torch.save(net.state_dict(), root / "weights.pth")
    rng = np.random.default_rng(0)
    frame = (MEAN + STD * rng.standard_normal((16, 16))).astype(np.float32)
    out = _denoise(net, frame[None], MEAN, STD)[0]
    shape = (1, 1, 16, 16) if layout == "bcyx" else (1, 16, 16)
    np.save(root / "input.npy", frame.reshape(shape))
    np.save(root / "output.npy", out.reshape(shape))
    (root / "README.md").write_text("# N2V\n\nA tiny Noise2Void network.\n")
    channel = [s.ChannelAxis(channel_names=[s.Identifier("channel_0")])] if layout == "bcyx" else []
    in_id = s.TensorId("input")

    def axes(out: bool) -> list:
        spatial = [
            s.SpaceOutputAxis(id=s.AxisId(a), size=s.SizeReference(tensor_id=in_id, axis_id=a))
            if out
            else s.SpaceInputAxis(id=s.AxisId(a), size=s.ParameterizedSize(min=8, step=8))
            for a in ("y", "x")
        ]
        return [s.BatchAxis(), *channel, *spatial]

    if normalisation == "fixed" and layout == "bcyx":
        pre = s.FixedZeroMeanUnitVarianceDescr(
            kwargs=s.FixedZeroMeanUnitVarianceAlongAxisKwargs(
                axis=s.AxisId("channel"), mean=[MEAN], std=[STD]
            )
        )
        post = s.ScaleLinearDescr(
            kwargs=s.ScaleLinearAlongAxisKwargs(axis=s.AxisId("channel"), gain=[STD], offset=[MEAN])
        )
    else:
        if normalisation == "fixed":
            pre = s.FixedZeroMeanUnitVarianceDescr(
                kwargs=s.FixedZeroMeanUnitVarianceKwargs(mean=MEAN, std=STD)
            )
        else:  # statistics of each sample
            pre = s.ZeroMeanUnitVarianceDescr(
                kwargs=s.ZeroMeanUnitVarianceKwargs(axes=[s.AxisId("y"), s.AxisId("x")])
            )
        post = s.ScaleLinearDescr(kwargs=s.ScaleLinearKwargs(gain=STD, offset=MEAN))
    with ValidationContext(perform_io_checks=True, root=root):
        return s.ModelDescr(
            name="N2V tiny 2D",
            description="A Noise2Void network in CAREamics' export conventions.",
            authors=[s.Author(name="Another Tool")],
            cite=[s.CiteEntry(text="Noise2Void", doi=s.Doi("10.1109/CVPR.2019.00223"))],
            license=s.LicenseId("BSD-3-Clause"),
            documentation=s.FileDescr(source=root / "README.md"),
            inputs=[
                s.InputTensorDescr(
                    id=in_id,
                    axes=axes(False),
                    test_tensor=s.FileDescr(source=root / "input.npy"),
                    preprocessing=[pre],
                )
            ],
            outputs=[
                s.OutputTensorDescr(
                    id=s.TensorId("prediction"),
                    axes=axes(True),
                    test_tensor=s.FileDescr(source=root / "output.npy"),
                    postprocessing=[post],
                )
            ],
            weights=s.WeightsDescr(
                pytorch_state_dict=s.PytorchStateDictWeightsDescr(
                    source=root / "weights.pth",
                    architecture=s.ArchitectureFromFileDescr(
                        source=root / "architecture.py", callable=s.Identifier("TinyN2V")
                    ),
                    pytorch_version=s.Version("2.4"),
                )
            ),
        )


@pytest.mark.parametrize(
    ("layout", "normalisation", "container"),
    [("bcyx", "fixed", "zip"), ("byx", "fixed", "rdf.yaml"), ("bcyx", "per-sample", "zip")],
)
def test_careamics_style_n2v_package_runs_through_cascope_denoise(
    tmp_path, monkeypatch, capsys, layout, normalisation, container
):
    from bioimageio.spec import save_bioimageio_package, save_bioimageio_package_as_folder

    build = tmp_path / "build"
    build.mkdir()
    descr = _build(build, layout, normalisation)
    if container == "zip":
        package = save_bioimageio_package(descr, output_path=tmp_path / "n2v.zip")
    else:
        folder = save_bioimageio_package_as_folder(descr, output_path=tmp_path / "n2v")
        package = Path(folder) / "rdf.yaml"
    rng = np.random.default_rng(1)
    movie = (MEAN + 20 + 12 * rng.standard_normal((6, 40, 48))).astype(np.float32)
    tifffile.imwrite(tmp_path / "movie.tif", movie)
    out = tmp_path / "denoised.tif"
    args = ["denoise", str(tmp_path / "movie.tif"), "--model", str(package), "-o", str(out)]
    code, err = run_cli([*args, "--device", "cpu"], monkeypatch, capsys)
    assert code == 0, err
    got = tifffile.imread(out)
    if normalisation == "fixed":
        mean, std = MEAN, STD
    else:  # cascope takes the statistics of the whole recording, not of each tile
        mean, std = float(movie.astype(np.float64).mean()), float(movie.astype(np.float64).std())
    expected = _denoise(_network(), movie, mean, std)
    assert got.shape == movie.shape
    assert np.abs(got - expected).max() < 1e-3  # float32 rounding at ~120
    # and it denoises: the network is untrained, but the output is not the input
    assert np.abs(got - movie).mean() > 1.0


def test_a_package_with_two_input_channels_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    import yaml
    from bioimageio.spec import save_bioimageio_package_as_folder

    build = tmp_path / "build"
    build.mkdir()
    folder = Path(
        save_bioimageio_package_as_folder(
            _build(build, "bcyx", "fixed"), output_path=tmp_path / "p"
        )
    )
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    rdf["inputs"][0]["axes"][1]["channel_names"] = ["a", "b"]
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    movie = np.zeros((3, 16, 16), np.float32)
    tifffile.imwrite(tmp_path / "movie.tif", movie)
    args = [
        "denoise",
        str(tmp_path / "movie.tif"),
        "--model",
        str(folder / "rdf.yaml"),
        "-o",
        str(tmp_path / "out.tif"),
    ]
    code, err = run_cli(args, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "2 channels" in lines[0], err
    assert not (tmp_path / "out.tif").exists()
