"""The HTTP service: `service.py` wires the parts below into one BentoML service.

scheduling/  the request queue, admission and the batch policy (no BentoML)
http/        defences, deadlines, tokens, error mapping, the OpenAPI document
pages/       the front page, the docs page and the live figures
model/       loading, hot-swap, readiness, heap hygiene
"""
