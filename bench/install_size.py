"""What the ONNX Runtime backend adds to an install: the size on disk of refit's
dependencies with and without the distributions only `onnxruntime` and `onnx` need.

    python bench/install_size.py [--no-record]

Reads the current environment (install refit first: `pip install -e ".[dev]"`, as CI does). A
distribution counts as the backend's when it is `onnxruntime` or `onnx`, or when
only they (and other such distributions) require it; the rest is the install
before the backend. Sizes are the bytes of each distribution's installed files.
"""

from __future__ import annotations

import argparse
import re
from importlib import metadata
from pathlib import Path

from record import publish

BACKEND = {"onnxruntime", "onnx"}


def _name(text: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", text.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _size(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def backend_only(dists: dict[str, metadata.Distribution]) -> set[str]:
    """The backend's distributions and those nothing else requires, to a fixed point."""
    required_by: dict[str, set[str]] = {name: set() for name in dists}
    for name, dist in dists.items():
        for req in dist.requires or []:
            if "extra ==" not in req and _name(req) in required_by:
                required_by[_name(req)].add(name)
    own = {n for n in BACKEND if n in dists}
    while True:
        more = {n for n, users in required_by.items() if users and users <= own} - own
        if not more:
            return own
        own |= more


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    dists = {_name(d.metadata["Name"]): d for d in metadata.distributions()}
    sizes = {name: _size(dist) for name, dist in dists.items()}
    own = backend_only(dists)
    after = sum(sizes.values())
    before = after - sum(sizes[n] for n in own)
    lines = [
        "| install | MiB |",
        "|---|---|",
        f"| before (without the ONNX backend) | {before / 2**20:,.0f} |",
        f"| after | {after / 2**20:,.0f} |",
        f"| added: {', '.join(sorted(own))} | {(after - before) / 2**20:,.0f} "
        f"({after / before - 1:+.1%}) |",
    ]
    text = "\n".join(lines)
    publish("install_size", text, keep=not args.no_record)


if __name__ == "__main__":
    main()
