"""bioimage.io packages out and in: export every model kind, test it, run it elsewhere and back.

Each exported package is tested by ``bioimageio.core`` (inside ``cascope export``), then run by
``bioimageio.core`` alone in a separate process on a held-out movie; its output must equal
cascope's own prediction of that movie within the tolerances below.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from tests.models import _tiny

bioimageio_core = pytest.importorskip("bioimageio.core")

from cascope.models.package import bioimageio_incompatible  # noqa: E402


def _skip_reason() -> str | None:
    import bioimageio.spec
    import pydantic

    if bioimageio_incompatible(bioimageio.spec.__version__, pydantic.VERSION):
        return "this bioimageio.spec needs pydantic<2.14 (pip install 'cascope[bioimageio]')"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))

HERE = Path(__file__).parent
#: Held-out data: sizes are multiples of the tiny networks' step (2), as the packages ask.
HELD_MOVIE = (16, 40, 48)
HELD_VOLUME = (12, 32, 36)
#: Package output vs cascope's own prediction: largest difference at most RTOL of the output's
#: range plus ULPS float32 steps of its largest value (the same arithmetic in another order).
RTOL = 1e-4
ULPS = 8
FAST = ("deepcad", "deepcad-curve", "n2v", "care", "events", "segmenter")
SLOW = ("n2v3d", "n2n")


def _cascope_prediction(kind: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """cascope's own prediction of held-out data, and the package input for the same data."""
    if kind == "events":
        from cascope.events.preprocess import preprocess
        from cascope.events.train import load_event_model, probability

        held = _tiny.movie(7, HELD_MOVIE)
        em = load_event_model(folder)
        prob = probability(em.network, held, tile=HELD_MOVIE, lam=em.als_lam, p=em.als_p)
        x = preprocess(held, lam=em.als_lam, p=em.als_p).apply(held)
        return prob[None, None], x[None, None]
    if kind == "segmenter":
        from cascope.models import load_model
        from cascope.segment.predict import predict_probabilities

        held = _tiny.movie(8, HELD_VOLUME)
        net, _ = load_model(folder)
        probs = predict_probabilities(net, held, tile=HELD_VOLUME, device="cpu")
        return probs[None], held[None, None]
    from cascope.config.denoise import DeepPredictConfig
    from cascope.denoise.deep import DeepDenoiser

    held = _tiny.movie(7, HELD_MOVIE)
    den = DeepDenoiser.load(folder)
    cfg = DeepPredictConfig.model_validate({"tile": HELD_MOVIE, "block": HELD_MOVIE[0]})
    out = den.predict(held, axes="TYX", config=cfg, device="cpu")
    assert out is not None
    if den.config.network_ndim == 2:  # frames are the samples: axes b, c, y, x
        return out[:, None], held[:, None]
    return out[None, None], held[None, None]


def _export_and_run(kinds: tuple[str, ...], root: Path) -> dict[str, dict[str, Any]]:
    """Train tiny models, export them, and run every package in one separate process.

    The 2D N2V model is exported through the command line, with ONNX weights, an author and a
    sample recording; the others through the library.
    """
    from typer.testing import CliRunner

    from cascope.cli import app
    from cascope.models.bioimageio import export_bioimageio

    results: dict[str, dict[str, Any]] = {}
    jobs = []
    for kind in kinds:
        folder = _tiny.make_model(kind, root / kind)
        package = root / f"{kind}.zip"
        formats = ["pytorch_state_dict", "torchscript"]
        if kind == "n2v" and importlib.util.find_spec("onnxruntime") is not None:
            tifffile.imwrite(root / "sample.tif", _tiny.movie(4, (6, 40, 40)))
            args = [
                "export",
                str(folder),
                "-o",
                str(package),
                "--onnx",
                "--author",
                "A. Person",
                "--sample",
                str(root / "sample.tif"),
            ]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
            formats.append("onnx")
        else:
            export_bioimageio(folder, package)
        expected, x = _cascope_prediction(kind, folder)
        np.save(root / f"{kind}_in.npy", x)
        results[kind] = {
            "folder": folder,
            "package": package,
            "expected": expected,
            "input": x,
            "formats": formats,
        }
        for weights in formats:
            jobs.append(
                {
                    "package": str(package),
                    "input": str(root / f"{kind}_in.npy"),
                    "output": str(root / f"{kind}_{weights}.npy"),
                    "weights": weights,
                }
            )
    (root / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run(
        [sys.executable, str(HERE / "_run_package.py"), str(root / "jobs.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for kind in kinds:
        for weights in results[kind]["formats"]:
            results[kind][weights] = np.load(root / f"{kind}_{weights}.npy")
    return results


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _export_and_run(FAST, tmp_path_factory.mktemp("bmz"))


def _assert_same(result: dict[str, Any]) -> None:
    expected = result["expected"]
    for weights in result["formats"]:
        got = result[weights]
        assert got.shape == expected.shape, weights
        diff = float(np.abs(got - expected).max())
        assert diff <= _tolerance(expected), f"{weights}: {diff:.3g} > {_tolerance(expected):.3g}"


def _tolerance(expected: np.ndarray) -> float:
    span = float(expected.max() - expected.min())
    return RTOL * span + ULPS * float(np.spacing(np.float32(np.abs(expected).max())))


@pytest.mark.parametrize("kind", FAST)
def test_package_run_elsewhere_gives_cascopes_prediction(exported, kind):
    result = exported[kind]
    _assert_same(result)
    import zipfile

    names = set(zipfile.ZipFile(result["package"]).namelist())
    assert {"rdf.yaml", "README.md", "cover.png", "architecture.py"} <= names
    rdf = zipfile.ZipFile(result["package"]).read("rdf.yaml").decode()
    assert "format_version: 0.5" in rdf
    readme = zipfile.ZipFile(result["package"]).read("README.md").decode()
    assert "## Validation" in readme and "doi:" in readme
    if kind == "n2v":  # exported by the command line with its options
        assert "A. Person" in rdf and "onnx" in rdf
    arch = zipfile.ZipFile(result["package"]).read("architecture.py").decode()
    # a denoiser's response curve travels inside the package's network
    assert ("class WithResponse" in arch) == (kind == "deepcad-curve")
    assert ("WithResponse" in rdf) == (kind == "deepcad-curve")


@pytest.mark.slow
def test_remaining_denoisers_export_and_run_elsewhere(tmp_path):
    for result in _export_and_run(SLOW, tmp_path).values():
        _assert_same(result)


def test_events_and_segmenter_packages_run_tiled_like_their_folders(exported):
    """cascope's own tiled prediction through the package equals that through the folder."""
    from cascope.events.train import load_event_model, probability
    from cascope.models import load_model
    from cascope.segment.predict import predict_probabilities

    movie = _tiny.movie(9, (20, 36, 44))  # not multiples: tiles are padded to valid sizes
    ev = exported["events"]
    by_folder, by_package = load_event_model(ev["folder"]), load_event_model(ev["package"])
    assert by_package.threshold == by_folder.threshold
    a = probability(by_folder.network, movie, tile=(8, 16, 16))
    b = probability(by_package.network, movie, tile=(8, 16, 16))
    assert np.abs(a - b).max() < 1e-5

    volume = _tiny.movie(10, (10, 30, 34))
    seg = exported["segmenter"]
    a = predict_probabilities(load_model(seg["folder"])[0], volume, tile=(8, 16, 16))
    b = predict_probabilities(load_model(seg["package"])[0], volume, tile=(8, 16, 16))
    assert np.abs(a - b).max() < 1e-5


def test_denoise_cli_runs_a_package_streamed_like_the_folder(exported, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cascope.cli import app

    movie = _tiny.movie(11, (20, 36, 44))
    tifffile.imwrite(tmp_path / "movie.tif", movie)
    outs = {}
    for name, model in (
        ("folder", exported["deepcad"]["folder"]),
        ("package", exported["deepcad"]["package"]),
    ):
        out = tmp_path / f"{name}.tif"
        args = [
            "denoise",
            str(tmp_path / "movie.tif"),
            "--model",
            str(model),
            "-o",
            str(out),
            "--tile",
            "8",
            "16",
            "16",
            "--block",
            "8",
            "--device",
            "cpu",
        ]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        outs[name] = tifffile.imread(out)
    assert np.abs(outs["folder"] - outs["package"]).max() <= _tolerance(outs["folder"])


def test_package_whose_axes_do_not_fit_is_refused_in_one_line(
    exported, tmp_path, monkeypatch, capsys
):
    from tests.cli.test_bad_inputs import run_cli

    volume = tmp_path / "stack.tif"
    tifffile.imwrite(volume, _tiny.movie(12, (8, 24, 24)))
    package = str(exported["deepcad"]["package"])
    args = [
        "denoise",
        str(volume),
        "--axes",
        "ZYX",
        "--model",
        package,
        "-o",
        str(tmp_path / "o.tif"),
    ]
    code, err = run_cli(args, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "time" in lines[0] and "ZYX" in lines[0], err
    assert not (tmp_path / "o.tif").exists()


def test_export_refuses_to_write_a_package_that_fails_its_test(exported, tmp_path, monkeypatch):
    from cascope.errors import CascopeError
    from cascope.models import bioimageio as bmz

    wrong = bmz.ExportPlan.reference

    def off_by_one(self, x):  # test outputs that the network does not reproduce
        return wrong(self, x) + 1.0

    monkeypatch.setattr(bmz.ExportPlan, "reference", off_by_one)
    with pytest.raises(CascopeError, match="fails bioimage.io's test"):
        bmz.export_bioimageio(exported["n2v"]["folder"], tmp_path / "bad.zip")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "kind", "words"),
    [("denoise", "events", "cascope detect"), ("segment", "deepcad", "cascope denoise")],
)
def test_a_package_of_another_task_is_refused_in_one_line(
    exported, tmp_path, monkeypatch, capsys, command, kind, words
):
    from tests.cli.test_bad_inputs import run_cli

    data = tmp_path / "data.tif"
    tifffile.imwrite(data, _tiny.movie(13, (8, 24, 24)))
    out = tmp_path / "out.tif"
    args = [command, str(data), "--model", str(exported[kind]["package"]), "-o", str(out)]
    if command == "segment":
        args += ["--axes", "ZYX"]
    code, err = run_cli(args, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and words in lines[0], err
    assert not out.exists()


def test_percentile_preprocessing_of_a_package_uses_the_whole_volume(exported):
    """Run with its own processing, the tiles share the volume's percentiles, as cascope's do."""
    from cascope.models import load_model
    from cascope.models.package import open_package
    from cascope.segment.predict import predict_probabilities
    from cascope.tiling import predict_tiled, torch_predictor

    volume = _tiny.movie(14, (10, 30, 34))
    package = open_package(exported["segmenter"]["package"], axes="ZYX")
    assert package.preprocessing == ["scale_range"]  # percentiles of each sample
    net = package.network(data=volume, processing=True)
    got = predict_tiled(torch_predictor(net), volume[None], tile=(8, 16, 16), channel=True)
    folder = exported["segmenter"]["folder"]
    expected = predict_probabilities(load_model(folder)[0], volume, tile=(8, 16, 16))
    assert np.abs(got - expected).max() < 1e-5
