"""Commands are module-level functions; the option checks they relied on live in the configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from cascope.config.denoise import (
    DEEP_METHODS,
    DENOISE_LOSSES,
    DeepDenoiseConfig,
    DeepMethod,
    DenoiseLoss,
    DenoiseRequest,
)
from cascope.config.denoise_classical import CLASSICAL_METHODS, ClassicalMethod
from cascope.config.events import DetectConfig, EventTrainConfig, PUConfig
from cascope.config.pipeline import EventsStep


def test_method_tuples_are_the_literals() -> None:
    from typing import get_args

    assert DEEP_METHODS == get_args(DeepMethod)
    assert DENOISE_LOSSES == get_args(DenoiseLoss)
    assert CLASSICAL_METHODS == get_args(ClassicalMethod)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "median", "model": "m"}, "--method median and --model"),
        ({"method": "deepcad", "loss": "l5"}, "--loss 'l5': use one of l2, l1, l1+l2"),
        ({"loss": "l1"}, "--loss: for a network trained here"),
        ({"model": "m", "loss": "l1"}, "--loss: for a network trained here"),
        ({"method": "n2v", "distributed": True}, "--scheduler/--cluster run the classical"),
        ({"tta": True, "batch_size": 4}, "--tta, --batch-size: for networks only"),
        ({"mode": "4d"}, "--mode '4d': use 2d or 3d"),
        ({"method": "foo"}, "--method 'foo' is not one of gaussian, median"),
    ],
)
def test_denoise_request_refuses_options_that_do_not_fit(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        DenoiseRequest.model_validate(fields)


def test_denoise_request_resolves_the_denoiser() -> None:
    assert DenoiseRequest().method == "gaussian" and not DenoiseRequest().network
    assert DenoiseRequest(method="deepcad", loss="l1").network
    by_model = DenoiseRequest(model=Path("m"), tile=(8, 32, 32))
    assert by_model.network and by_model.model == Path("m")
    assert DenoiseRequest(method="bm4d", mode="3d", distributed=True).distributed


def test_a_training_config_names_the_loss_flag() -> None:
    with pytest.raises(ValidationError, match="--loss 'l5'"):
        DeepDenoiseConfig(loss="l5")  # type: ignore[arg-type]
    assert DeepDenoiseConfig(loss="l1+l2").loss == "l1+l2"


@pytest.mark.parametrize(
    ("given", "expected"), [("auto", "auto"), ("0.25", 0.25), ("4", 4.0), (0.5, 0.5)]
)
def test_thresholds_are_parsed_from_text(given: object, expected: object) -> None:
    assert DetectConfig.model_validate({"threshold": given}).threshold == expected
    assert EventsStep.model_validate({"threshold": given}).threshold == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"threshold": "abc"}, "--threshold must be 'auto' or a number, got 'abc'"),
        ({"threshold": "nan"}, "--threshold must be a finite number, got 'nan'"),
        ({"threshold": float("inf")}, "--threshold must be a finite number"),
        ({"threshold": "4", "model": "m"}, "--threshold 4: with --model it is a probability"),
    ],
)
def test_bad_thresholds_name_the_flag(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        EventsStep.model_validate(fields)


def test_pu_options_are_parsed_and_checked() -> None:
    assert PUConfig(unlabeled_ratio="2").unlabeled_ratio == 2.0  # type: ignore[arg-type]
    assert PUConfig(unlabeled_ratio="complete").unlabeled_ratio == "complete"
    with pytest.raises(ValidationError, match="--unlabeled-ratio must be a number or 'complete'"):
        PUConfig(unlabeled_ratio="some")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="--pu must be nnpu or sampling, got 'x'"):
        EventTrainConfig.model_validate({"pu": {"mode": "x"}})


def test_validated_turns_flag_refusals_into_one_line() -> None:
    from cascope.cli._apps import validated
    from cascope.errors import InputError

    with pytest.raises(InputError, match=r"^--mode '4d': use 2d or 3d$"):
        validated(DenoiseRequest, {"mode": "4d"})
    with pytest.raises(ValidationError):  # a refusal without a flag stays pydantic's
        validated(DetectConfig, {"block": 0})
    from cascope.config.denoise_classical import ClassicalDenoiseConfig
    from cascope.errors import CascopeError

    with pytest.raises(CascopeError, match=r"^invalid denoise options: --sigma: .*; --size: "):
        validated(ClassicalDenoiseConfig, {"sigma": -1, "size": 0}, options="denoise options")


def test_a_simulate_command_is_a_function_of_its_own_options() -> None:
    from cascope.cli.simulate import axons, somatic

    params = somatic(
        frames=10, shape=(8, 8), neurons=2, photons=None, frame_rate=None, spike_rate=None
    )
    assert params["n_frames"] == 10 and params["n_neurons"] == 2 and params["photons"] is None
    straight = axons(
        shape=None, density=None, n_axons=None, fret=False, straight=30.0, photons=None
    )
    assert straight["mode"] == "straight" and straight["tube_length"] == 30.0


def test_commands_are_module_level_and_registered() -> None:
    import typer

    from cascope.cli import app, denoise, evaluate, events, segment

    group = typer.main.get_command(app)
    for module, names in (
        (events, ("detect", "features_cmd", "compare", "train_events")),
        (segment, ("preprocess", "label", "semantic", "segment", "measure")),
        (evaluate, ("denoise", "segmentation", "events")),
        (denoise, ("denoise",)),
    ):
        for name in names:
            assert callable(getattr(module, name))
    flags = {
        opt
        for param in group.commands["detect"].params  # type: ignore[attr-defined]
        for opt in getattr(param, "opts", [])
    }
    assert {"--scheduler", "--cluster", "--missing-chunks", "--threshold"} <= flags
