"""Drift checks: the prediction log against each model version's reference profile.

Modules: `signals` (specs, verdict; pure), `features` (log rows to compared
columns), `report` (the Evidently report), `estimate` (accuracy with and without
labels), `check` (`run_drift_check`, for the CLI and schedulers), `history` (report
files), `export` (Prometheus gauges for the service) and `evaluation` (detection
rates on scored windows). Nothing is imported here: a serving worker imports
`export` alone and must not pay for Evidently.
"""
