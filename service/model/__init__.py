"""The served model's life in a worker: loading (with a fallback to an earlier champion),
hot-swap, /readyz, and the heap hygiene that keeps long-lived workers fast."""
