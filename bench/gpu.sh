#!/usr/bin/env bash
# The whole GPU benchmark, offline, on one NVIDIA GPU (H100 or H200): about 6 minutes.
#
#   bash bench/gpu.sh [BUNDLE]
#
# BUNDLE (made by bench/gpu_bundle.sh on a connected machine) holds the wheels refit
# needs beyond torch, transformers, prometheus-client and pydantic, and wrk; without
# it the current Python environment must already have refit installed and wrk on PATH.
# Steps: the GPU tests, the default model fine-tuned on the GPU (into a fresh
# BENTOML_HOME unless one is given), then bench/serve_bench.py with GPU settings.
# Results: bench/out/serve_bench.{json,png} and a dated entry in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-}
py=${PYTHON:-python3}  # the interpreter whose environment runs everything
started=$SECONDS
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 BENTOML_DO_NOT_TRACK=true PIP_NO_INDEX=1

if [[ -n "$bundle" ]]; then
    "$py" -m pip install --quiet --no-index --find-links "$bundle/wheels" \
        --no-deps "$bundle"/wheels/*.whl
    bin=$(cd "$bundle/bin" && pwd)
    export PATH="$bin:$PATH" LD_LIBRARY_PATH="$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
"$py" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device visible"; print(torch.cuda.get_device_name(0), "torch", torch.__version__)'
command -v wrk >/dev/null || { echo "wrk not found: give a bundle from bench/gpu_bundle.sh" >&2; exit 1; }

echo "== GPU tests"
"$py" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py

export BENTOML_HOME=${BENTOML_HOME:-$(mktemp -d)/bentoml}
export REFIT_DEVICE=cuda
has_champion='from core.registry import Registry; raise SystemExit(Registry.from_settings().champion() is None)'
if ! "$py" -c "$has_champion"; then
    echo "== fine-tuning the default model on the GPU"
    "$py" -m refit train
fi

# One GPU, several workers: the work that limits a GPU server is on the CPU side
# (HTTP, JSON, tokenisation), so each worker feeds the same GPU from its own core(s).
cores=$(nproc)
export REFIT_WORKERS=${REFIT_WORKERS:-$(( cores >= 8 ? 4 : 2 ))}
export REFIT_MAX_BATCH_SIZE=${REFIT_MAX_BATCH_SIZE:-512}
export REFIT_ACCESS_LOG=${REFIT_ACCESS_LOG:-false}
echo "== serving benchmark: $REFIT_WORKERS workers on $cores cores"
"$py" bench/serve_bench.py --concurrency 8,64,256 --duration 10 --texts 8192
echo "done in $(( SECONDS - started )) s"
