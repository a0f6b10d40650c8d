"""The start-up heap is frozen before packets flow, out of the cyclic collector's walks,
which then come less often; each batch's arrays reuse the memory the last one freed."""

from __future__ import annotations

import gc
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from engine.pipeline import PACKET_PATH_GC_THRESHOLD, freeze_startup_heap


def _in_oldest_generation(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation=2))


def test_objects_alive_at_start_up_leave_the_collectors_generations() -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    ruleset_like = {"rules": [[n] for n in range(1000)]}
    try:
        gc.collect()
        assert _in_oldest_generation(ruleset_like)
        freeze_startup_heap()
        assert gc.get_freeze_count() >= 1000
        assert not _in_oldest_generation(ruleset_like)
        # Objects made afterwards (the packets') are still collected as usual.
        later: list[object] = []
        later.append(later)
        del later
        assert gc.collect() >= 1
        # and the youngest generation is collected less often while packets flow
        assert gc.get_threshold() == (PACKET_PATH_GC_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


_HEAP_PROBE = """
import ctypes, json, sys
import numpy as np
from engine.pipeline import keep_batch_memory
try:
    from numpy._core import multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
tuned = keep_batch_memory() if sys.argv[1] == "tuned" else None
before = mallinfo2()
batch = np.ones(24 << 20, dtype=np.uint8)
during = mallinfo2()
del batch
after = mallinfo2()
print(json.dumps({
    "tuned": tuned,
    "mapped_for_it": during.hblkhd - before.hblkhd,
    "heap_kept": after.arena - before.arena,
    "huge_page_advice": multiarray._set_madvise_hugepage(True),
}))
"""


def _heap_after_one_batch(mode: str) -> dict[str, object]:
    """In a fresh interpreter (the settings hold for the whole process), what a batch-sized
    array took from the C allocator, and kept after it was freed."""
    out = subprocess.run(
        [sys.executable, "-c", _HEAP_PROBE, mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    return json.loads(out)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the allocator settings are glibc's",
)
def test_batch_sized_arrays_reuse_heap_memory_once_kept() -> None:
    # as the C allocator comes: a 24 MB array gets a mapping of its own, unmapped on free
    plain = _heap_after_one_batch("plain")
    assert plain["mapped_for_it"] >= 24 << 20
    # kept: it comes from the heap, which holds on to it once freed for the next batch,
    # and numpy no longer asks the kernel for huge pages
    tuned = _heap_after_one_batch("tuned")
    assert tuned["tuned"] is True
    assert tuned["mapped_for_it"] == 0
    assert tuned["heap_kept"] >= 24 << 20
    assert tuned["huge_page_advice"] is False
