"""Request cases and texts shared by the in-process, backend and real-server tests."""

from __future__ import annotations

# (name, body sent as raw bytes, words the 400 message must contain). Limits are
# those of the `served_env` fixture: 16 texts per request, 2000 characters per text.
BAD_REQUESTS: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("missing field", b"{}", ("texts", "required")),
    ("wrong field name", b'{"text": ["hello"]}', ("texts", "required")),
    ("texts not a list", b'{"texts": "hello"}', ("texts", "array")),
    ("numbers instead of strings", b'{"texts": [1, 2]}', ("texts", "string")),
    ("null text", b'{"texts": [null]}', ("texts", "string")),
    ("empty list", b'{"texts": []}', ("texts", "at least 1")),
    ("empty text", b'{"texts": [""]}', ("texts", "at least 1 character")),
    ("too many texts", b'{"texts": [' + b",".join([b'"hi"'] * 17) + b"]}", ("texts", "16")),
    ("text too long", b'{"texts": ["' + b"x" * 2001 + b'"]}', ("texts", "2000")),
    ("not JSON", b"texts=hello", ("json",)),
    ("truncated JSON", b'{"texts": ["hello"', ("json",)),
]

# Texts of every shape a pass meets: short and long, one cut at max_length, non-Latin
# script, and a special token's spelling typed as text.
MIXED_TEXTS: list[str] = [
    "refund my money please",
    "my parcel has not arrived and the tracking page has said in transit for nine days now",
    "hi",
    "password reset please, locked out",
    "I cannot log in since the last update, the app says my password is wrong",
    "cancel",
    "why was I charged twice this month? " * 6,  # cut at max_length
    "🚚 配送 [SEP]",
]
