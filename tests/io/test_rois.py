"""ROIs a user already has: ImageJ sets, label images, JSON pixel lists; unsafe files refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from cascope.errors import InputError
from cascope.io.rois import read_rois


def _shoelace(xy: np.ndarray) -> float:
    x, y = xy[:, 0].astype(float), xy[:, 1].astype(float)
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


@pytest.mark.realdata
def test_imagej_roi_set_gives_the_drawn_areas_and_their_traces(real_data) -> None:
    import roifile

    movie = tifffile.imread(real_data / "sima_example_2p_T20.tif")
    path = real_data / "sima_imagej_rois.zip"
    rois = read_rois(path, movie.shape[1:])
    drawn = roifile.ImagejRoi.fromfile(path)
    assert rois.names == [r.name for r in drawn] and len(rois) == 2
    for (ys, xs), roi in zip(rois.pixels, drawn, strict=True):
        # every pixel inside the drawn outline's box, and the area that of the polygon
        assert ys.min() >= roi.top and ys.max() < roi.bottom
        assert xs.min() >= roi.left and xs.max() < roi.right
        outline = roi.coordinates()
        perimeter = np.hypot(*np.diff(outline, axis=0).T).sum()
        assert abs(len(ys) - _shoelace(outline)) < 0.5 * perimeter
    traces = rois.traces(movie)
    ys, xs = rois.pixels[1]
    np.testing.assert_allclose(traces[1], movie[:, ys, xs].mean(axis=1))


def test_label_image_in_any_format_and_json_pixels(tmp_path) -> None:
    lab = np.zeros((20, 30), np.uint16)
    lab[2:6, 3:9] = 7
    lab[10:15, 20:22] = 3
    tifffile.imwrite(tmp_path / "labels.tif", lab)
    np.save(tmp_path / "labels.npy", lab.astype(np.int32))
    for name in ("labels.tif", "labels.npy"):
        rois = read_rois(tmp_path / name, (20, 30))
        assert rois.names == ["3", "7"] and list(rois.areas) == [10, 24]
        np.testing.assert_array_equal(rois.labels() > 0, lab > 0)
    # overlapping JSON ROIs each keep all their pixels; pixels outside the frame are dropped
    doc = [
        {"id": "a", "coordinates": [[y, x] for y in range(4) for x in range(4)]},
        {"coordinates": [[y, x] for y in range(2, 6) for x in range(2, 6)] + [[99, 99]]},
    ]
    (tmp_path / "rois.json").write_text(json.dumps(doc))
    rois = read_rois(tmp_path / "rois.json", (20, 30))
    assert rois.names == ["a", "roi2"] and list(rois.areas) == [16, 16]
    movie = np.arange(3 * 20 * 30, dtype=np.float32).reshape(3, 20, 30)
    tr = rois.traces(movie)
    np.testing.assert_allclose(tr[0], movie[:, :4, :4].mean(axis=(1, 2)))
    np.testing.assert_allclose(tr[1], movie[:, 2:6, 2:6].mean(axis=(1, 2)))


def test_bad_roi_files_are_refused_with_the_flag_to_fix(tmp_path) -> None:
    tifffile.imwrite(tmp_path / "small.tif", np.ones((10, 10), np.uint8))
    with pytest.raises(InputError, match=r"\(20, 30\).*--rois"):
        read_rois(tmp_path / "small.tif", (20, 30))
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((20, 30), np.uint8))
    with pytest.raises(InputError, match="no ROI"):
        read_rois(tmp_path / "empty.tif", (20, 30))
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(InputError, match="list of ROIs"):
        read_rois(tmp_path / "bad.json", (20, 30))
    (tmp_path / "rois.txt").write_text("1 2 3")
    with pytest.raises(InputError, match="known ROI format"):
        read_rois(tmp_path / "rois.txt", (20, 30))
    # a pickle that names anything but numpy arrays is refused before it runs
    target = tmp_path / "exploited"
    evil = np.array([{"ypix": Exploit(target), "xpix": np.arange(3)}], dtype=object)
    np.save(tmp_path / "stat.npy", evil, allow_pickle=True)
    with pytest.raises(InputError, match="read safely"):
        read_rois(tmp_path / "stat.npy", (20, 30))
    assert not target.exists()


class Exploit:
    """Unpickling this creates a file: the reader must never call it."""

    def __init__(self, target) -> None:
        self.target = target

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_suite2p_stat_npy_keeps_the_cells(tmp_path) -> None:
    ys, xs = np.mgrid[2:5, 3:7]
    stat = np.array(
        [
            {"ypix": ys.ravel(), "xpix": xs.ravel(), "lam": np.ones(12, np.float32), "npix": 12},
            {"ypix": np.array([10, 11]), "xpix": np.array([1, 1]), "med": [10, 1]},
            {"ypix": np.array([15]), "xpix": np.array([20]), "radius": np.float32(1.0)},
        ],
        dtype=object,
    )
    np.save(tmp_path / "stat.npy", stat, allow_pickle=True)
    rois = read_rois(tmp_path / "stat.npy", (20, 30))
    assert list(rois.areas) == [12, 2, 1]
    np.testing.assert_array_equal(rois.pixels[0][0], ys.ravel())
    np.save(tmp_path / "iscell.npy", np.array([[1.0, 0.9], [0.0, 0.2], [1.0, 0.7]]))
    assert list(read_rois(tmp_path / "stat.npy", (20, 30)).areas) == [12, 1]


def test_imagej_rectangle_and_oval_and_lines_refused(tmp_path) -> None:
    import roifile

    kind = roifile.ROI_TYPE
    box = {"top": 2, "left": 3, "bottom": 12, "right": 11}
    roifile.ImagejRoi(roitype=kind.RECT, name="r", **box).tofile(tmp_path / "r.roi")
    rect = read_rois(tmp_path / "r.roi", (20, 30))
    assert rect.areas[0] == 10 * 8 and rect.names == ["r"]
    roifile.ImagejRoi(roitype=kind.OVAL, name="o", **box).tofile(tmp_path / "o.roi")
    oval = read_rois(tmp_path / "o.roi", (20, 30))
    # an ellipse of semi-axes 5 and 4: area pi * 20
    assert abs(oval.areas[0] - np.pi * 20) < 8 and oval.labels()[7, 7] == 1
    roifile.ImagejRoi(roitype=kind.LINE, x1=1, y1=1, x2=8, y2=8).tofile(tmp_path / "l.roi")
    with pytest.raises(InputError, match="no area"):
        read_rois(tmp_path / "l.roi", (20, 30))
