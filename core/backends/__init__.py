"""Inference backends: one seam (`base.Backend`), torch and ONNX Runtime behind it.

    base.py            the seam, `plan_buckets` and the shared `predict`
    outputs.py         Encoded, PassOutput, BatchOutput
    encoding.py        tokenising and padding, shared by every backend
    torch_backend.py   torch: eager, traced, int8; CPU and GPU (with torch_pass.py,
                       torch_int8.py: the only modules here that import torch)
    onnx_backend.py    ONNX Runtime: fp32 and int8 graphs
    record.py          backends.json: what registration measured of each backend
    choice.py          which backend serves (REFIT_BACKEND), a pure function
    loading.py         load a version on its chosen backend, torch as the fallback

docs/backends.md tells the whole story, and how to add a backend.
"""
