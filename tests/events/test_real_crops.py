"""Smoke test on the real mSCT crops: detections fall inside the authors' event masks."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from cascope.events import event_features, label_events


def test_events_on_real_msct_crops_fall_in_author_masks(real_data) -> None:
    root = real_data / "flclab_msct_crops"
    ids = sorted({p.name.split("_")[0] for p in root.glob("*_max-proj.tif")})
    if not ids:
        pytest.skip("no mSCT crops in the real data folder")
    inside = 0
    for i in ids:
        img = tifffile.imread(root / f"{i}_max-proj.tif").astype(np.float32)
        mask = tifffile.imread(root / f"{i}_max-proj-pred_event-only.tif") > 0
        # a crop is one event's time max-projection: repeat it as a 3-frame movie
        smooth = ndimage.gaussian_filter(img, 1.0)
        movie = np.stack([smooth] * 3)
        labels, table = label_events(movie, threshold=float(np.quantile(smooth, 0.99)))
        assert len(table) >= 1
        best = table.loc[table["score_max"].idxmax()]
        near = ndimage.binary_dilation(mask, iterations=2)
        inside += bool(near[int(round(best["y"])), int(round(best["x"]))])
        # features run on real data: ΔF/F against F0 = 1 of (1 + crop) is the crop itself
        feats = event_features(1.0 + np.stack([img] * 3), labels, f0=np.ones(img.shape))
        k = int(best["id"]) - 1
        sel = labels[0] == best["id"]
        assert feats.loc[k, "dff_peak"] == pytest.approx(float(img[sel].max()), rel=1e-5)
        assert feats.loc[k, "duration_frames"] == 3
    # the brightest detection lies on the authors' event in most crops
    assert inside >= 0.75 * len(ids)
