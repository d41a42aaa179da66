"""Write the frozen model folders of format 1 and their expected predictions (run once).

The folders under ``tests/models/frozen/format1`` were written by this script with cascope's
model format 1; they are committed and never rewritten, so that every later cascope proves it
still loads them and predicts what format 1 predicted (``test_frozen_models.py``).

Usage: ``python tests/models/frozen/make_frozen.py`` from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

import _tiny  # noqa: E402
from predict_frozen import predict  # noqa: E402


def main() -> None:
    out = HERE / "format1"
    for kind in ("deepcad", "events", "segmenter"):
        folder = out / kind
        if folder.exists():
            raise SystemExit(f"{folder} exists: frozen fixtures are never rewritten")
        _tiny.make_model(kind, folder)
        for ckpt in out.glob("*.ckpt"):
            import shutil

            shutil.rmtree(ckpt)
        x = _tiny.movie(3, (8, 16, 16))
        np.save(folder / "input.npy", x)
        np.save(folder / "expected.npy", predict(kind, folder, x))


if __name__ == "__main__":
    main()
