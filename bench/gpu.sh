#!/usr/bin/env bash
# The whole GPU benchmark, offline, on one NVIDIA GPU (H100 or H200): about 10 minutes.
#
#   bash bench/gpu.sh [BUNDLE]
#
# BUNDLE (made by bench/gpu_bundle.sh on a connected machine) holds the wheels refit
# needs beyond torch, transformers, prometheus-client and pydantic, and wrk; without
# it the current Python environment must already have refit installed and wrk on PATH.
# Steps: the GPU tests, the default model's architecture registered with random weights
# (into a fresh BENTOML_HOME unless one with a champion is given), then
# bench/serve_bench.py with GPU settings, with several workers and with one.
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
if [[ -n "$bundle" ]]; then export TINY_MODEL_TOKENIZER="$bundle/minilm"; fi
"$py" -m pytest -q -m gpu -p no:cacheprovider tests/unit/test_gpu.py

# The default model's architecture with random weights (the packaged weights do not
# travel; speed does not depend on weight values), unless a BENTOML_HOME with a
# champion is given.
export BENTOML_HOME=${BENTOML_HOME:-$(mktemp -d)/bentoml}
export REFIT_DEVICE=cuda
has_champion='from core.registry import Registry; from service.settings import get_settings
raise SystemExit(Registry.from_settings(get_settings().core).champion() is None)'
if ! "$py" -c "$has_champion"; then
    echo "== a MiniLM-L6 classifier with random weights"
    if [[ -n "$bundle" ]]; then
        "$py" bench/model_home.py "$BENTOML_HOME" --base random --source "$bundle/minilm"
    else
        "$py" bench/model_home.py "$BENTOML_HOME" --base minilm
    fi
fi

# Serving: refit's scheduler against BentoML's batching, and the tiny-model overhead
# proxy; then one worker (tokenising overlaps the forward pass on its event loop)
# against several workers feeding the same GPU.
cores=$(nproc)
export REFIT_MAX_BATCH_SIZE=${REFIT_MAX_BATCH_SIZE:-512} REFIT_MAX_BATCH_TOKENS=${REFIT_MAX_BATCH_TOKENS:-65536}
export REFIT_ACCESS_LOG=false
for workers in $(( cores >= 8 ? 4 : 2 )) 1; do
    echo "== serving benchmark: $workers worker(s) on $cores cores"
    REFIT_WORKERS=$workers "$py" bench/serve_bench.py --contenders raw,scheduler,bentoml,tiny \
        --concurrency 8,64,256 --duration 8 --texts 8192
done
echo "done in $(( SECONDS - started )) s"
