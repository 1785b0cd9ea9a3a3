"""The bookkeeping behind durable responses: which sequence numbers were written."""

from __future__ import annotations

import time

from monitoring.log_queue import SeqRanges


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


def test_seq_ranges_intersect_as_their_members_do() -> None:
    ranges = SeqRanges(max_ranges=3)
    for n in (5, 7, 6, 10, 20, 21, 30):  # [5-7] is forgotten: 1..7 count as members
        ranges.add(n)
    members = {n for n in range(40) if n in ranges}
    for lo in range(-1, 35):
        for hi in range(lo - 1, 36):
            expected = any(lo <= n <= hi for n in members)
            assert ranges.intersects(lo, hi) == expected, (lo, hi)


def test_all_durable_agrees_with_asking_seq_by_seq() -> None:
    from monitoring.log_queue import LogQueue

    queue: LogQueue[str] = LogQueue(max_rows=4, group_rows=100, linger_s=0.0, eager_rows=1)
    seqs = [queue.put(f"batch {i}", rows=1)[0] for i in range(6)]  # the last two do not fit
    group = queue.take(wake_by=time.monotonic())
    assert group is not None
    queue.settle(failed=[seqs[1]])
    late = queue.put("after", rows=1)[0]  # queued, not yet written
    for first in range(0, late + 1):
        for last in range(first - 1, late + 1):
            expected = all(queue.is_durable(seq) for seq in range(max(first, 1), last + 1))
            assert queue.all_durable(first, last) == expected, (first, last)
    assert queue.all_durable(seqs[2], seqs[3])
    assert not queue.all_durable(seqs[0], seqs[2])
    assert not queue.all_durable(late, late)
