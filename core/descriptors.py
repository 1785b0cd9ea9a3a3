"""Per-text features that drift checks compare over time: descriptors and embeddings.

They are computed in two places that must agree exactly: at training time for the
reference profile, and in the prediction log's writer thread for every served text
(before redaction, so that hashed or redacted logs still get them). Both call
`char_counts`, and both derive the descriptors with `descriptor_frame`.

The log stores raw counts rather than shares: small integers take one or two bytes
in SQLite where a float takes eight, and a share is one division away. Embeddings
(`EMBEDDING_DIMS` float16 values from the serving forward pass) are stored as 64-byte
blobs, packed and unpacked here for the log and the reference profile alike.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

# Columns of `char_counts`, in order.
COUNT_COLUMNS: Final = ("n_chars", "n_digits", "n_upper", "n_punct")
# What a drift check compares, in order.
DESCRIPTORS: Final = (
    "n_chars",
    "n_tokens",
    "unknown_rate",
    "digit_share",
    "upper_share",
    "punct_share",
)

# Embeddings are kept small enough to store with every logged prediction: 32 float16
# values, 64 bytes. Every backend's pass projects the encoder's output to this width
# (`core.backends.torch_pass.projection_matrix`).
EMBEDDING_DIMS: Final = 32

_DIGIT, _UPPER, _PUNCT = 1, 2, 4
_BMP: Final = 0x10000


@functools.cache
def _classes() -> np.ndarray:
    """Class bits of every Basic Multilingual Plane code point.

    Digits are Unicode category Nd, uppercase Lu; "punctuation" is every P* and S*
    category, which on ASCII is exactly `string.punctuation` ($, +, <, ^ ... are
    symbols to Unicode). Code points outside the BMP (mostly emoji) count as
    characters of none of the classes.
    """
    table = np.zeros(_BMP, dtype=np.uint8)
    for code in range(_BMP):
        category = unicodedata.category(chr(code))
        if category == "Nd":
            table[code] = _DIGIT
        elif category == "Lu":
            table[code] = _UPPER
        elif category[0] in "PS":
            table[code] = _PUNCT
    return table


def char_counts(texts: Sequence[str]) -> np.ndarray:
    """(n, 4) int64: characters, digits, uppercase letters, punctuation and symbols.

    One pass over the whole batch in numpy: a few nanoseconds per character, so the
    log's writer thread keeps up with a GPU's throughput.
    """
    strings = [str(text) for text in texts]
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    counts = np.zeros((len(strings), len(COUNT_COLUMNS)), dtype=np.int64)
    counts[:, 0] = lengths
    if not lengths.sum():
        return counts
    # surrogatepass: a lone surrogate a client sent is still one character.
    joined = "".join(strings).encode("utf-32-le", "surrogatepass")
    codes = np.frombuffer(joined, dtype="<u4")
    bits = np.where(codes < _BMP, _classes()[np.minimum(codes, _BMP - 1)], 0)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    for column, bit in enumerate((_DIGIT, _UPPER, _PUNCT), start=1):
        running = np.concatenate(([0], np.cumsum((bits & bit) > 0)))
        counts[:, column] = running[ends] - running[starts]
    return counts


def descriptor_frame(
    counts: np.ndarray, n_tokens: np.ndarray, n_unknown: np.ndarray
) -> pd.DataFrame:
    """The `DESCRIPTORS` of each text from its counts, token count and [UNK] count.

    Shares of an empty text are 0, not NaN: an empty message is a legitimate input
    whose descriptors should be compared, not dropped. Missing counts (NaN, from
    log rows written before descriptors existed) stay NaN.
    """
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, len(COUNT_COLUMNS))
    tokens = np.asarray(n_tokens, dtype=np.float64)
    chars = counts[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_char = counts[:, 1:] / np.where(chars > 0, chars, 1.0)[:, None]
        unknown = np.asarray(n_unknown, dtype=np.float64) / np.where(tokens > 0, tokens, 1.0)
    return pd.DataFrame(
        {
            "n_chars": chars,
            "n_tokens": tokens,
            "unknown_rate": unknown,
            "digit_share": per_char[:, 0],
            "upper_share": per_char[:, 1],
            "punct_share": per_char[:, 2],
        }
    )


def pack_embeddings(embeddings: np.ndarray) -> list[bytes]:
    """One little-endian float16 blob per row."""
    rows = np.ascontiguousarray(np.asarray(embeddings).astype("<f2", copy=False))
    return [row.tobytes() for row in rows]


def unpack_embeddings(blobs: Sequence[bytes | None], dims: int = EMBEDDING_DIMS) -> np.ndarray:
    """(n, dims) float32; a missing or malformed blob gives a row of NaN."""
    width = 2 * dims
    out = np.full((len(blobs), dims), np.nan, dtype=np.float32)
    good = [i for i, blob in enumerate(blobs) if blob is not None and len(blob) == width]
    if good:
        joined = b"".join(bytes(blobs[i]) for i in good)  # type: ignore[arg-type]
        out[good] = np.frombuffer(joined, dtype="<f2").reshape(len(good), dims)
    return out
