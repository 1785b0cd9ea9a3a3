"""Prometheus metrics, the prediction log and drift checks (the retraining trigger that
reads them is `retraining.trigger`).

May import `training` and `core`; never `retraining` or `service`.
"""
