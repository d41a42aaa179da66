"""Scripts that reproduce every number cascope claims; run each as ``python -m benchmarks.NAME``.

Run from the repository root (``-m`` puts it on the import path). What the scripts share (test
movies, measured child processes, peer environments, result files) lives in
:mod:`benchmarks._harness`.
"""
