"""Real servers and tiny models for refit's tests and benchmarks.

Each server gets a free loopback port and its own folder, and is stopped by the PID of
the process group it was started in. Installed with refit so that the benchmarks under
`bench/` and the tests share one copy, as `bentoml.testing` does for BentoML's.
"""
