"""Data loading and validation, fine-tuning, evaluation, and the model registry.

This layer knows nothing of HTTP or monitoring; `monitoring` and `service` build on it.
"""
