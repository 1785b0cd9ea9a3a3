"""The bookkeeping behind durable responses: which sequence numbers were written."""

from __future__ import annotations

from refit.monitoring.log_queue import SeqRanges


def test_seq_ranges_merge_and_forget_conservatively() -> None:
    ranges = SeqRanges(max_ranges=3)
    for n in (5, 7, 6, 1, 10):
        ranges.add(n)
    assert [n for n in range(12) if n in ranges] == [1, 5, 6, 7, 10]
    assert 0 not in ranges
    assert len(ranges) == 3
    ranges.add(20)  # a fourth range: the oldest is forgotten, as "maybe failed"
    assert 1 in ranges
    assert 3 not in ranges
    assert 20 in ranges
