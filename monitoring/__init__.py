"""Prometheus metrics, the prediction log, drift checks and the retraining trigger.

May import `training`; never `service`.
"""
