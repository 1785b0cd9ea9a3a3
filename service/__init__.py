"""The BentoML service: HTTP API, adaptive batching, model loading and hot-swap."""
