"""Sliding windows and sketches: aggregates, event time, bounds and snapshots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.windowing import (
    CountMinSketch,
    EventClock,
    HyperLogLog,
    SketchedWindow,
    SlidingWindow,
    WindowSpec,
    hash64,
    hash64_array,
)


def test_aggregates_over_the_window() -> None:
    w = SlidingWindow(WindowSpec(duration=10.0, panes=10))
    for t, v, port in [(100.0, 5.0, 22), (101.0, 1.0, 23), (102.5, 9.0, 22), (103.0, 3.0, 80)]:
        w.add("10.0.0.1", t, value=v, item=port)
    assert w.aggregate("10.0.0.1", "count") == 4
    assert w.aggregate("10.0.0.1", "sum") == 18
    assert w.aggregate("10.0.0.1", "min") == 1
    assert w.aggregate("10.0.0.1", "max") == 9
    assert w.aggregate("10.0.0.1", "avg") == pytest.approx(4.5)
    assert w.aggregate("10.0.0.1", "distinct") == 3
    assert w.aggregate("10.0.0.2", "count") == 0


def test_events_slide_out_with_event_time() -> None:
    w = SlidingWindow(WindowSpec(duration=10.0, panes=10))
    w.add("k", 100.0, item=1)
    w.add("k", 105.0, item=2)
    assert w.aggregate("k", "count") == 2
    w.add("other", 110.5)  # time moves on: the event at 100 s has left the window
    assert w.aggregate("k", "count") == 1
    assert w.aggregate("k", "distinct") == 1
    w.add("other", 116.0)
    assert w.aggregate("k", "count") == 0
    assert w.expire() == 1 and "k" not in w


def test_out_of_order_inside_window_counts_late_is_dropped() -> None:
    w = SlidingWindow(WindowSpec(duration=10.0, panes=5))
    w.add("k", 200.0)
    assert w.add("k", 195.0) is True  # older but still inside the window
    assert w.add("k", 150.0) is False
    assert w.aggregate("k", "count") == 2
    assert w.stats().late_events == 1


def test_injected_clock_drives_expiry() -> None:
    clock = EventClock()
    w = SlidingWindow(WindowSpec(duration=60.0), clock=clock)
    clock.observe(1000.0)
    w.add("k", 1000.0)
    assert w.aggregate("k", "count") == 1
    clock.observe(1061.0)
    assert w.aggregate("k", "count") == 0


def test_keys_are_bounded_and_evictions_counted() -> None:
    w = SlidingWindow(WindowSpec(duration=10.0, max_keys=100))
    for i in range(1000):
        w.add(f"src{i}", 50.0 + i * 0.001)
    assert len(w) == 100
    assert w.stats().evicted_keys == 900
    assert "src999" in w and "src0" not in w


def test_distinct_turns_into_hyperloglog_within_its_error() -> None:
    spec = WindowSpec(duration=60.0, panes=6, exact_distinct=64, hll_precision=10)
    w = SlidingWindow(spec)
    n = 20_000
    for i in range(n):
        w.add("victim", 10.0 + 50.0 * i / n, item=i)
    est = w.aggregate("victim", "distinct")
    assert abs(est - n) / n < 3 * 1.04 / 32  # three standard errors at p=10


def test_hyperloglog_batch_and_merge() -> None:
    a, b = HyperLogLog(12), HyperLogLog(12)
    a.add_hashes(hash64_array(np.arange(0, 60_000)))
    b.add_hashes(hash64_array(np.arange(30_000, 90_000)))
    a.merge(b)
    assert abs(a.estimate() - 90_000) / 90_000 < 3 * 1.04 / 64
    small = HyperLogLog(10)
    for i in range(50):
        small.add(f"name{i}")
    assert round(small.estimate()) == 50
    with pytest.raises(ValueError, match="precision"):
        HyperLogLog(3)


def test_hash64_array_is_splitmix64_and_keeps_the_shape() -> None:
    # splitmix64's first outputs from state 0: a saved sketch's counters sit where
    # these values put them, so the hash may not drift
    assert int(hash64_array(np.array([0]))[0]) == 0xE220A8397B1DCDAF
    assert int(hash64_array(np.array([0]), seed=1)[0]) == 0x6E789E6AA1B965F4
    keys = np.array([[1, 2, 3], [-1, 2**62, 2]])
    got = hash64_array(keys, seed=3)
    assert got.shape == (2, 3) and got.dtype == np.uint64
    assert got[0, 1] == got[1, 2] == hash64_array(np.array([2]), seed=3)[0]
    assert len(set(got.ravel().tolist())) == 5
    assert hash64_array(np.array([], dtype=np.int64)).shape == (0,)


def test_count_min_columns_and_repeated_keys() -> None:
    cms = CountMinSketch(width=100, depth=3)
    keys = np.array([5, 9, 5, 5])
    h = hash64_array(keys)
    cols = cms.columns(h)
    assert cols.shape == (3, 4)
    for d in range(3):
        assert cols[d].tolist() == [int(v) % 100 for v in hash64_array(h, seed=d)]
    cms.add_hashes(h, np.array([1.0, 2.0, 3.0, 4.0]))  # a key repeated in one call adds up
    assert cms.estimate_hashes(h[:1])[0] >= 8.0
    assert cms.total == 10.0
    assert float(cms.table.sum()) == 30.0  # every count in each of the 3 rows


def test_count_min_never_undercounts() -> None:
    cms = CountMinSketch(width=256, depth=4)
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 5000, size=50_000)
    cms.add_hashes(hash64_array(keys))
    uniq, counts = np.unique(keys, return_counts=True)
    est = cms.estimate_hashes(hash64_array(uniq))
    assert np.all(est >= counts)
    bound = np.e / 256 * len(keys)
    assert np.mean(est - counts <= bound) > 0.95


def test_sketched_window_slides() -> None:
    w = SketchedWindow(10.0, panes=5, width=512, depth=3)
    h = hash64_array(np.array([7, 8]))
    w.add_hashes(100.0, h[:1], 40)
    w.add_hashes(104.0, h, 1.0)
    assert list(w.estimate_hashes(h)) == [41.0, 1.0]
    w.add_hashes(111.0, h[1:], 1.0)
    assert list(w.estimate_hashes(h)) == [1.0, 2.0]


def test_snapshot_round_trips_through_json() -> None:
    spec = WindowSpec(duration=30.0, panes=3, exact_distinct=4)
    w = SlidingWindow(spec)
    for i in range(40):
        w.add(("10.0.0.1", 22), 100.0 + i * 0.5, value=float(i), item=i % 9)
    w.add("x", 110.0, item="a")
    restored = SlidingWindow(spec)
    restored.restore(json.loads(json.dumps(w.snapshot())))
    for key in (("10.0.0.1", 22), "x"):
        for fn in ("count", "sum", "min", "max", "avg", "distinct"):
            assert restored.aggregate(key, fn) == w.aggregate(key, fn)
    sw = SketchedWindow(10.0)
    sw.add_hashes(5.0, hash64_array(np.array([1, 2, 3])))
    sw2 = SketchedWindow(10.0)
    sw2.restore(json.loads(json.dumps(sw.snapshot())))
    h = hash64_array(np.array([1, 2, 3, 4]))
    assert list(sw2.estimate_hashes(h)) == list(sw.estimate_hashes(h))


def test_bad_specs_and_aggregates_are_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        WindowSpec(duration=0)
    with pytest.raises(ValueError, match="panes"):
        WindowSpec(duration=5, panes=0)
    w = SlidingWindow(WindowSpec(duration=5))
    with pytest.raises(ValueError, match="unknown window aggregate 'median'"):
        w.aggregate("k", "median")
    with pytest.raises(TypeError):
        hash64(1.5)


def test_stable_hash() -> None:
    assert hash64("example.com") == hash64("example.com")
    assert hash64(("a", 1)) != hash64(("a", 2))
    assert hash64(5) == int(hash64_array(np.array([5]))[0])


def test_add_batch_matches_one_summary_at_a_time() -> None:
    spec = WindowSpec(duration=10.0, panes=5, exact_distinct=8)
    one, many = SlidingWindow(spec), SlidingWindow(spec)
    rng = np.random.default_rng(4)
    for step in range(30):
        keys = [f"k{int(x)}" for x in rng.integers(0, 6, 4)]
        times = [100.0 + step * 0.7 + 0.01 * j for j in range(4)]
        counts = [int(x) for x in rng.integers(1, 5, 4)]
        items = [int(x) for x in rng.integers(0, 40, sum(counts))]
        got = many.add_batch(
            keys, times, counts, "distinct", totals=[float(c) for c in counts], items=items
        )
        pos, want = 0, []
        for key, t, c in zip(keys, times, counts, strict=True):
            one.add_summary(key, t, c, float(c), 0.0, 0.0, hash_items := items[pos : pos + c])
            pos += c
            assert hash_items
            want.append(one.aggregate(key, "distinct"))
        assert got == want
    for key in [f"k{i}" for i in range(6)]:
        for fn in ("count", "sum", "avg", "distinct"):
            assert many.aggregate(key, fn) == one.aggregate(key, fn)
    with pytest.raises(ValueError, match="count, sum, avg or distinct"):
        many.add_batch(["k"], [1.0], [1], "max")


def test_queries_before_any_time_is_known() -> None:
    clock = EventClock()  # never observed: -inf
    w = SlidingWindow(WindowSpec(duration=10.0), clock=clock)
    assert w.aggregate("k", "count") == 0
    assert w.add_batch(["k"], [50.0], [2], "count") == [2.0]
    assert w.expire() == 0
    sw = SketchedWindow(10.0, clock=EventClock())
    assert list(sw.estimate_hashes(hash64_array(np.array([1])))) == [0.0]
