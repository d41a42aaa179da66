"""Command-line surface of denoising: help at 80 columns, --version, --loss, one step default."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import cascope
from cascope.cli import app
from cascope.config.denoise import DENOISE_STEPS


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group
            out += _commands(cmd, (*path, name))
        else:
            out.append(((*path, name), cmd))
    return out


def test_help_at_80_columns_never_cuts_an_option_name(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 10
    for path, cmd in commands:
        res = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
        assert res.exit_code == 0, (path, res.output)
        assert "…" not in res.output, (path, res.output)
        for param in cmd.params:
            for name in param.opts:
                if name.startswith("--"):
                    pattern = re.escape(name) + r"(?![\w-])"
                    assert re.search(pattern, res.output), (path, name, res.output)


def test_version_prints_the_package_version():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"cascope {cascope.__version__}"


def test_every_command_that_trains_a_denoiser_has_the_same_default_steps():
    for path in (["denoise"], ["train", "denoiser"], ["benchmark", "denoise"]):
        res = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert f"default {DENOISE_STEPS}, the same for every command" in res.output, path
        assert "--loss" in res.output or path == ["benchmark", "denoise"]


def test_loss_option_is_checked_and_recorded_with_the_model(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from cascope.denoise.deep import DeepDenoiser

    rng = np.random.default_rng(0)
    movie = tmp_path / "m.tif"
    tifffile.imwrite(movie, rng.poisson(3.0, (16, 24, 24)).astype(np.uint16))
    runner = CliRunner()
    bad = runner.invoke(app, ["denoise", str(movie), "-o", str(tmp_path / "d.tif"), "--method",
                              "deepcad", "--loss", "l5"])  # fmt: skip
    assert bad.exit_code == 1 and "--loss 'l5'" in str(bad.exception)
    assert not (tmp_path / "d.tif").exists()
    filt = runner.invoke(app, ["denoise", str(movie), "-o", str(tmp_path / "d.tif"), "--loss",
                               "l1"])  # fmt: skip
    assert filt.exit_code == 1 and "--loss" in str(filt.exception)
    common = ["--steps", "2", "--patch", "4", "16", "16", "--depth", "2", "--base", "4"]
    for loss in (None, "l1"):
        out = tmp_path / f"model_{loss}"
        args = ["train", "denoiser", str(movie), "-o", str(out), *common, "--device", "cpu"]
        res = runner.invoke(app, args + ([] if loss is None else ["--loss", loss]))
        assert res.exit_code == 0, res.output
        assert DeepDenoiser.load(out).config.loss == (loss or "l2")
