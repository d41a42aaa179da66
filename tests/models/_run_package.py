"""Run bioimage.io packages with bioimageio.core alone (no cascope), in a process of its own.

Usage: python _run_package.py JOBS.json, where JOBS.json lists {"package", "input", "output",
"weights"}; each input .npy (shaped as the package's input tensor) is predicted as one sample and
the output saved as .npy.
"""

import json
import sys

import numpy as np
from bioimageio.core import Sample, Tensor, create_prediction_pipeline, load_description


def main(jobs_file: str) -> None:
    for job in json.loads(open(jobs_file).read()):
        descr = load_description(job["package"])
        inp, out = descr.inputs[0], descr.outputs[0]
        x = np.load(job["input"])
        pipeline = create_prediction_pipeline(descr, weight_format=job["weights"])
        sample = Sample(
            members={inp.id: Tensor.from_numpy(x, dims=[a.id for a in inp.axes])}, stat={}, id="x"
        )
        result = pipeline.predict_sample_without_blocking(sample).members[out.id]
        np.save(job["output"], result.data.transpose(*[str(a.id) for a in out.axes]).values)
    assert "cascope" not in sys.modules


if __name__ == "__main__":
    main(sys.argv[1])
