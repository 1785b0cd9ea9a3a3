"""What one request, and one worker's queue, may hold.

Every size limit among the serving settings is bounded so that no allowed setting lets
one client take a worker's memory or time; the bounds that involve several settings
together are checked here, when the settings are read.
"""

from __future__ import annotations

from typing import Protocol

# Tokenising runs
# at about a million characters a second on a 2-core machine (bench/abuse_bench.py), so the
# largest request costs about 0.25 s of tokenising and at most 3.1 MiB of JSON.
MAX_REQUEST_CHARS = 262_144  # texts per request x characters per text
MAX_HELD_CHARS = 64 * 2**20  # texts a worker's scheduler holds x characters per text
# Largest body the text limits can need: 12 bytes a character (a surrogate pair escaped).
MAX_REQUEST_BYTES = MAX_REQUEST_CHARS * 12 + 64 * 1024


class RequestLimits(Protocol):
    """The serving settings the budget reads (`service.settings.ServingSettings`)."""

    max_texts_per_request: int
    max_text_chars: int
    max_in_flight_texts: int
    max_batch_size: int
    max_url_bytes: int
    max_header_bytes: int
    max_head_bytes: int
    max_latency_ms: int
    request_timeout_s: float


def check_request_budget(serving: RequestLimits) -> None:
    """Raise ValueError naming the settings whose product or order breaks a bound."""
    per_request = serving.max_texts_per_request * serving.max_text_chars
    if per_request > MAX_REQUEST_CHARS:
        raise ValueError(
            f"REFIT_MAX_TEXTS_PER_REQUEST x REFIT_MAX_TEXT_CHARS is {per_request:,} "
            f"characters, over the {MAX_REQUEST_CHARS:,} one request may hold; lower one"
        )
    held = serving.max_in_flight_texts * serving.max_text_chars
    if held > MAX_HELD_CHARS:
        raise ValueError(
            f"REFIT_MAX_IN_FLIGHT_TEXTS x REFIT_MAX_TEXT_CHARS is {held:,} characters, over "
            f"the {MAX_HELD_CHARS:,} a worker may hold; lower one of them"
        )
    if serving.max_texts_per_request > serving.max_batch_size:
        raise ValueError(
            "REFIT_MAX_TEXTS_PER_REQUEST is over REFIT_MAX_BATCH_SIZE: one request would "
            "hold the model for several rounds while smaller ones wait past their deadline"
        )
    if serving.max_texts_per_request > serving.max_in_flight_texts:
        raise ValueError(
            "REFIT_MAX_TEXTS_PER_REQUEST is over REFIT_MAX_IN_FLIGHT_TEXTS: a request that "
            "large could never be admitted"
        )
    if max(serving.max_url_bytes, serving.max_header_bytes) > serving.max_head_bytes:
        raise ValueError(
            "REFIT_MAX_URL_BYTES and REFIT_MAX_HEADER_BYTES: at most REFIT_MAX_HEAD_BYTES"
        )
    if serving.max_latency_ms >= serving.request_timeout_s * 1000:
        raise ValueError("REFIT_MAX_LATENCY_MS must be below REFIT_REQUEST_TIMEOUT_S")
