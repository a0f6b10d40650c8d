"""The start-up heap is frozen before packets flow, out of the cyclic collector's walks,
which then come less often."""

from __future__ import annotations

import gc

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
