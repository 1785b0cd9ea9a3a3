"""Load the champion as a server worker does, in a fresh process, and report on it.

    python -m refit.testing.worker_load [--transformers-first]

The process loads, checks and warms the champion of the home its environment names
(BENTOML_HOME, REFIT_STATE_DIR, REFIT_BACKEND, REFIT_DEVICE), answers one text, and
prints one JSON line: seconds from the process's first import to that answer, peak
resident memory, which backend answered with which label, and whether torch and
transformers were imported. `--transformers-first` imports transformers' tokenizer
class before anything else, the import a worker made before it read `tokenizer.json`
alone. `bench/worker_load.py` times this; the tests check what it imports.
"""

import time

STARTED = time.perf_counter()  # before any other import: they are what is measured

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

TEXT = "where is my parcel"


def main(argv: list[str]) -> dict[str, Any]:
    if "--transformers-first" in argv:
        from transformers import AutoTokenizer  # noqa: F401

    from refit.core.registry import Registry
    from refit.service.model.startup import load_served_model
    from refit.service.settings import get_settings

    settings = get_settings()
    registry = Registry.from_settings(settings.core)
    served = load_served_model(registry, registry.champion_tag().split(":")[1], settings)
    answer = served.classifier.predict([TEXT])
    return {
        "seconds": time.perf_counter() - STARTED,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "backend": served.classifier.name,
        "label": served.classifier.labels[int(answer.label_ids[0])],
        "imported": sorted(m for m in ("torch", "transformers") if m in sys.modules),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
