"""Data loading and validation, fine-tuning, evaluation, calibration and registration of
a new version (the registry itself is `core.registry`).

This layer knows nothing of HTTP or monitoring; `monitoring` and `service` build on it.
"""
