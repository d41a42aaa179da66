#!/usr/bin/env bash
# GPU readiness in one command: the GPU tests, then the GPU denoising benchmark (with DeepCAD-RT
# side by side when its wheels are here), each step under its own timeout, all under 9 minutes (30 + 60 + 150 + 270 s at most),
# no network needed. Log: benchmarks/results/gpu_check.log.
#
#   bash benchmarks/gpu_check.sh           # on the GPU machine
#   bash benchmarks/gpu_check.sh --quick   # CPU-only dry run of the same steps (CI), < 3 minutes
#
# Preparation, on a machine with network, before the GPU machine is started:
#   1. The venv (a torch build with CUDA for the GPU machine's driver, then cascope pinned to it):
#        python3 -m venv .venv && . .venv/bin/activate
#        pip install torch==2.13.0 && pip install -c constraints.txt -e ".[test]"
#      and carry .venv with the working tree (or make it the same way on the GPU machine).
#   2. The peer's wheels (optional; without them the DeepCAD-RT row is left out), < 64 MiB:
#        pip download deepcad==1.2.0 --no-deps -d benchmarks/.wheels
#        pip download "setuptools<81" "numpy<2" onnx onnxscript --only-binary=:all: \
#            --python-version 3.12 --platform manylinux2014_x86_64 -d benchmarks/.wheels
#      (the --python-version of the GPU machine's Python; `du -sh benchmarks/.wheels` to check
#      the size). On the GPU machine the script makes benchmarks/.peer-venv from them with
#      `pip install --no-index --find-links benchmarks/.wheels`, on top of .venv's torch
#      (--system-site-packages), and gives it to denoise_gpu.py as --peer-python. Both folders
#      are ignored by git.
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
case "${1:-}" in
    --quick) quick=1 ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--quick]" >&2; exit 2 ;;
esac

if [ "$quick" = 1 ]; then
    log=$(mktemp "${TMPDIR:-/tmp}/gpu_check_quick.XXXXXX.log")
else
    mkdir -p benchmarks/results
    log=benchmarks/results/gpu_check.log
fi
: >"$log"
failed=0

say() { echo "$*" | tee -a "$log"; }

# step SECONDS NAME COMMAND...: run one step under a timeout, its output into the log
step() {
    local limit=$1 name=$2 start rc
    shift 2
    say "== $name (at most ${limit} s): $*"
    start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
    rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        say "-- $name: TIMED OUT after ${limit} s"
        failed=1
    elif [ "$rc" != 0 ]; then
        say "-- $name: FAILED (exit $rc, $((SECONDS - start)) s); see $log"
        failed=1
    else
        say "-- $name: ok ($((SECONDS - start)) s)"
    fi
    return "$rc"
}

if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
PYTHON=${PYTHON:-python}

if [ "$quick" = 1 ]; then
    device=cpu
    env_check='import cascope, torch; print("cascope", cascope.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())'
else
    device=cuda
    env_check='import cascope, torch; assert torch.cuda.is_available(), "no CUDA device: torch " + torch.__version__; print("cascope", cascope.__version__, "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
fi
step 30 environment "$PYTHON" -c "$env_check" || { say "gpu_check: the environment is not ready"; exit 1; }
if [ "$quick" = 0 ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi >>"$log" 2>&1
fi

peer_args=()
wheels=benchmarks/.wheels
if [ "$quick" = 0 ] && compgen -G "$wheels/deepcad-*.whl" >/dev/null; then
    peer=benchmarks/.peer-venv
    if step 60 "DeepCAD-RT from $wheels" bash -c "
        set -e
        [ -x $peer/bin/python ] || $PYTHON -m venv --system-site-packages $peer
        $peer/bin/python -m pip install -q --no-index --find-links $wheels \
            'setuptools<81' 'numpy<2' onnx onnxscript
        $peer/bin/python -m pip install -q --no-index --find-links $wheels --no-deps deepcad==1.2.0
        $peer/bin/python -c 'import deepcad'"; then
        peer_args=(--peer-python "$peer/bin/python")
    else
        say "-- DeepCAD-RT left out"
    fi
else
    say "== DeepCAD-RT: no wheels in $wheels (or --quick): its row is left out"
fi

if [ "$quick" = 1 ]; then
    step 60 "GPU tests (collected only)" "$PYTHON" -m pytest -m gpu --collect-only -q -p no:cacheprovider
    step 120 "denoise_gpu.py (tiny, on the CPU)" "$PYTHON" -m benchmarks.denoise_gpu --quick --device cpu --threads 2
else
    step 150 "GPU tests" "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider
    step 270 "denoise_gpu.py" "$PYTHON" -m benchmarks.denoise_gpu --device "$device" "${peer_args[@]}"
fi

if [ "$failed" = 0 ]; then
    say "gpu_check: all steps passed ($SECONDS s); log $log"
else
    say "gpu_check: FAILED ($SECONDS s); log $log"
fi
exit "$failed"
