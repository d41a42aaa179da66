"""Model folders written by format 1 load and predict the same in every later cascope.

``frozen/format1`` holds tiny models (a few KB) written once by ``frozen/make_frozen.py`` and
committed; they are never rewritten. A folder of a format newer than this cascope reads is
refused in one line.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.cli.test_bad_inputs import run_cli

FROZEN = Path(__file__).parent / "frozen"
sys.path.insert(0, str(FROZEN))

from predict_frozen import predict  # noqa: E402

KINDS = ("deepcad", "events", "segmenter")


@pytest.mark.parametrize("kind", KINDS)
def test_frozen_format1_model_loads_and_predicts_as_when_written(kind):
    folder = FROZEN / "format1" / kind
    assert yaml.safe_load((folder / "model.yaml").read_text())["format_version"] == 1
    expected = np.load(folder / "expected.npy")
    got = predict(kind, folder, np.load(folder / "input.npy"))
    assert got.shape == expected.shape
    # the same float32 arithmetic, possibly in another order on another CPU
    tolerance = 1e-4 * float(np.abs(expected).max()) + 1e-6
    assert float(np.abs(got - expected).max()) <= tolerance


@pytest.mark.parametrize("kind", KINDS)
def test_a_folder_of_a_future_format_is_refused_in_one_line(kind, tmp_path):
    from cascope.errors import InputError
    from cascope.models import load_model
    from cascope.models.checkpoint import FORMAT_VERSION

    folder = shutil.copytree(FROZEN / "format1" / kind, tmp_path / kind)
    doc = yaml.safe_load((folder / "model.yaml").read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    (folder / "model.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as info:
        load_model(folder)
    message = str(info.value)
    assert "\n" not in message
    assert f"format {FORMAT_VERSION + 1}" in message and "upgrade cascope" in message


def test_denoise_refuses_a_future_format_folder_in_one_line(tmp_path, monkeypatch, capsys):
    import tifffile

    from cascope.models.checkpoint import FORMAT_VERSION

    folder = shutil.copytree(FROZEN / "format1" / "deepcad", tmp_path / "model")
    doc = yaml.safe_load((folder / "model.yaml").read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    (folder / "model.yaml").write_text(yaml.safe_dump(doc))
    tifffile.imwrite(tmp_path / "movie.tif", np.load(folder / "input.npy"))
    out = tmp_path / "out.tif"
    args = ["denoise", str(tmp_path / "movie.tif"), "--model", str(folder), "-o", str(out)]
    code, err = run_cli(args, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "upgrade cascope" in lines[0], err
    assert not out.exists()
