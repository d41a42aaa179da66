"""The human side of a bioimage.io package: citations, README (with Validation) and cover."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from cascope.models.bioimageio import ExportPlan

#: The method papers, by key: (text, DOI).
CITATIONS: dict[str, tuple[str, str]] = {
    "deepcad": (
        "Li X. et al. (2023) Real-time denoising enables high-sensitivity fluorescence "
        "time-lapse imaging beyond the shot-noise limit (DeepCAD-RT). Nature Biotechnology.",
        "10.1038/s41587-022-01450-8",
    ),
    "n2v": (
        "Krull A., Buchholz T.-O., Jug F. (2019) Noise2Void - Learning Denoising From Single "
        "Noisy Images. CVPR.",
        "10.1109/CVPR.2019.00223",
    ),
    "n2v2": (
        "Hoeck E. et al. (2022) N2V2 - Fixing Noise2Void Checkerboard Artifacts with Modified "
        "Sampling Strategies and a Tweaked Network Architecture.",
        "10.48550/arXiv.2211.08512",
    ),
    "n2n": (
        "Lehtinen J. et al. (2018) Noise2Noise: Learning Image Restoration without Clean Data. "
        "ICML.",
        "10.48550/arXiv.1803.04189",
    ),
    "care": (
        "Weigert M. et al. (2018) Content-aware image restoration: pushing the limits of "
        "fluorescence microscopy. Nature Methods.",
        "10.1038/s41592-018-0216-7",
    ),
    "unet": (
        "Ronneberger O., Fischer P., Brox T. (2015) U-Net: Convolutional Networks for "
        "Biomedical Image Segmentation. MICCAI.",
        "10.1007/978-3-319-24574-4_28",
    ),
    "unet3d": (
        "Cicek O. et al. (2016) 3D U-Net: Learning Dense Volumetric Segmentation from Sparse "
        "Annotation. MICCAI.",
        "10.1007/978-3-319-46723-8_49",
    ),
    "nnpu": (
        "Kiryo R., Niu G., du Plessis M. C., Sugiyama M. (2017) Positive-Unlabeled Learning "
        "with Non-Negative Risk Estimator. NeurIPS.",
        "10.48550/arXiv.1703.00593",
    ),
    "vgg": (
        "Simonyan K., Zisserman A. (2015) Very Deep Convolutional Networks for Large-Scale "
        "Image Recognition. ICLR.",
        "10.48550/arXiv.1409.1556",
    ),
}


def write_cover(x: NDArray[Any], y: NDArray[Any], path: Path) -> None:
    """Input and output side by side (middle plane, first output channel): a 2:1 PNG."""
    import imageio.v3 as iio

    def plane(a: NDArray[Any]) -> NDArray[np.uint8]:
        p = a[0, 0]
        while p.ndim > 2:
            p = p[p.shape[0] // 2]
        lo, hi = np.percentile(p, [1, 99.5])
        scaled = np.clip((p - lo) / max(hi - lo, 1e-12), 0, 1)
        return np.asarray(np.round(255 * scaled), np.uint8)

    left, right = plane(x), plane(y)
    h = max(left.shape[0], 128)
    rep = max(1, h // left.shape[0])
    block = np.ones((rep, rep), np.uint8)
    img = np.concatenate([np.kron(left, block), np.kron(right, block)], axis=1)
    iio.imwrite(path, img)


def description(plan: ExportPlan) -> str:
    what = {
        "denoise": "denoises calcium-imaging recordings",
        "events": "gives the probability of a calcium event (mSCT) at every voxel of a movie",
        "segmentation": "segments axons (background / axon / border classes) in 3D stacks",
    }[plan.task]
    return f"A cascope {plan.method} network that {what}; input {plan.axes}."


def documentation(plan: ExportPlan, x: NDArray[Any], y: NDArray[Any], traced_diff: float) -> str:
    """Write the package's README: what it does, its input, citations and validation."""
    import yaml

    from cascope.models.checkpoint import _plain

    prov = plan.doc.get("provenance") or plan.doc.get("training") or {}
    prov = {k: v for k, v in prov.items() if k != "config"}
    lines = [
        f"# {description(plan)}",
        "",
        "Exported by cascope (`cascope export`). Run it with `cascope "
        + {"denoise": "denoise", "events": "detect", "segmentation": "segment"}[plan.task]
        + " INPUT --model this.zip`, with bioimage.io tools (bioimageio.core, Fiji/deepImageJ, "
        "ilastik, napari) or in Python.",
        "",
        "## Input",
        "",
        f"Axes `b, c, {', '.join(plan.axes.lower())}` (one channel); every spatial size a "
        f"multiple of {plan.multiple}. The input is {plan.input_note}",
        "",
        "## Output",
        "",
        f"Channels: {', '.join(plan.output_names)}; same spatial size as the input.",
        "",
        "## Training provenance",
        "",
        "```yaml",
        yaml.safe_dump(_plain(prov), sort_keys=False).strip() or "{}",
        "```",
        "",
        "## Validation",
        "",
        "Data: the test tensors of this package, a "
        + "x".join(str(s) for s in x.shape[2:])
        + f" {plan.axes} crop; the test output was produced by the network itself.",
        "",
        "- bioimage.io: `bioimageio.core` `test_model` passed for every weight format before "
        "this package was written.",
        "- The test output is cascope's own prediction of the test input (output range "
        f"{float(y.min()):.4g} .. {float(y.max()):.4g}); the TorchScript weights reproduce "
        f"the PyTorch network on it to {traced_diff:.3g} (largest absolute difference, before "
        "postprocessing).",
        "- cascope's tests check, for every kind of model, that the package run by "
        "`bioimageio.core` alone gives cascope's prediction of a held-out movie.",
        "- Score of the training run: "
        + (
            f"best validation loss {prov['best_val_loss']:.4g}"
            if "best_val_loss" in prov and prov["best_val_loss"] is not None
            else f"final training loss {prov.get('final_loss')}"
        )
        + ".",
        "",
        "## Citations",
        "",
        *[f"- {CITATIONS[k][0]} doi:{CITATIONS[k][1]}" for k in plan.cite],
        "",
    ]
    return "\n".join(lines)
