#!/usr/bin/env bash
# Make what bench/gpu.sh needs on a GPU machine with no network, on a machine with one.
#
#   bash bench/gpu_bundle.sh [OUT] [PYTHON_VERSION]     # OUT defaults to bench/bundle
#
# OUT/wheels: refit and every dependency it has beyond torch, transformers,
# prometheus-client and pydantic (the GPU machine brings those), as wheels for
# Linux x86_64 and the given Python (default: this one's). OUT/bin: wrk and the
# shared libraries it links that a bare image may lack (LuaJIT). Copy OUT to the GPU
# machine beside the repository and run `bash bench/gpu.sh OUT`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/bundle}
py=${2:-$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')}
mkdir -p "$out/wheels" "$out/bin"

# The GPU machine's own torch stays; CUDA wheels (torch, nvidia-*, triton) are
# gigabytes and must match its driver.
provided='^(torch|transformers|prometheus[-_]client|pydantic|pydantic[-_]core|nvidia-|triton)([=<>!~ ;[]|$)'
reqs=$(mktemp)
python3 - "$reqs" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = project["dependencies"] + project["optional-dependencies"]["bench"]
deps += ["psutil>=5.9", "httpx>=0.27"]  # the benchmark harness
open(sys.argv[1], "w").write("\n".join(deps) + "\n")
PY
grep -viE "$provided" "$reqs" > "$reqs.keep"
# Resolve with the GPU machine's packages assumed present, so they are not fetched.
pip download --dest "$out/wheels" --only-binary=:all: --platform manylinux2014_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform linux_x86_64 \
    --python-version "$py" --implementation cp -r "$reqs.keep" \
    "torch==2.13.0" "transformers>=5,<6" "prometheus-client>=0.20" "pydantic>=2.7" 2>&1 | tail -n 3
# ...and dropped again: the GPU machine has its own (CUDA) builds of these.
find "$out/wheels" -regextype posix-extended -iregex \
    '.*/(torch|transformers|prometheus_client|pydantic|pydantic_core|nvidia_[^/]*|triton)-[^/]*\.whl' -delete
pip wheel --no-deps --wheel-dir "$out/wheels" . 2>&1 | tail -n 1

cp "$(command -v wrk)" "$out/bin/"
for lib in $(ldd "$(command -v wrk)" | awk '/luajit/ {print $3}'); do cp -L "$lib" "$out/bin/"; done
rm -f "$reqs" "$reqs.keep"
du -sh "$out"
