"""Wiring the packet path: a capture source through decode and the flow table to flow records."""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dpdk_io.batch import Source
from dpdk_io.errors import CaptureError
from engine.decode import MALFORMED_REASONS, DecodedBatch, decode
from engine.defrag import Defragmenter, DefragStats
from engine.flows import FlowRecords, FlowTable, FlowTableConfig, FlowTableStats

# Net allocations of tracked objects between collections of the youngest generation
# while packets flow (the interpreter's default is 700).
PACKET_PATH_GC_THRESHOLD = 50_000

# glibc's mallopt parameters, and what `keep_batch_memory` sets them to
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
HEAP_BLOCK_LIMIT = 32 << 20  # the largest block glibc lets come from its heap
HEAP_KEEP = 256 << 20  # freed heap memory kept before any goes back to the kernel
HEAP_GROWTH = 64 << 20  # the heap grows by this much more than it is asked for


def freeze_startup_heap() -> None:
    """Take what is alive before the packets flow (the compiled rules, the model, the
    modules) out of the cyclic collector's sight, and let it run less often.

    The packet path allocates objects per batch, and every so often the collector
    walks all tracked objects, hundreds of thousands of them the rule set's.  They
    live for the whole run and hold no cycles, so after one collection they are
    frozen (`gc.freeze`): the later walks see only what the packets allocate.
    Objects frozen stay freed by reference counting when dropped.

    What the packets allocate is freed by reference counting too, nearly all of it
    within its batch; the collector walks it for cycles that are rare. Its first
    generation is collected after `PACKET_PATH_GC_THRESHOLD` net allocations, not
    700, and so the older generations, which hold every open flow's state, are
    walked 70 times less often: on the bench capture with the community rules the
    collector's time fell from 0.46 s to 0.13 s.
    """
    gc.collect()
    gc.freeze()
    first, second, third = gc.get_threshold()
    gc.set_threshold(max(first, PACKET_PATH_GC_THRESHOLD), second, third)


def keep_batch_memory() -> bool:
    """Let each batch's arrays reuse the memory the last batch's freed, instead of the
    kernel mapping and zeroing fresh pages for them every batch; True if the C
    allocator took the settings (glibc), False where it has none to take.

    A batch of 64k packets makes arrays of up to tens of megabytes (its decoded rows,
    its reassembled copy). glibc serves blocks that large with their own mappings and
    gives them back on free, and trims its heap when much is free at its top; numpy
    asks for transparent huge pages on them, each zeroed whole by the kernel when first
    touched. On the bench capture with the community rules that was 0.55-0.66 s of
    kernel time in 3.3 s of matching; with numpy's huge-page advice off and blocks up
    to `HEAP_BLOCK_LIMIT` kept in the heap (up to `HEAP_KEEP` of them free, grown
    `HEAP_GROWTH` at a time) it is 0.14-0.20 s. Worker processes forked afterwards
    inherit the settings.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    advise = getattr(multiarray, "_set_madvise_hugepage", None)
    if advise is not None:
        advise(False)
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = (
        (_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT),
        (_M_TRIM_THRESHOLD, HEAP_KEEP),
        (_M_TOP_PAD, HEAP_GROWTH),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)


@dataclass(slots=True)
class PacketPathStats:
    packets: int = 0
    rows: int = 0
    non_ip: int = 0
    flows: int = 0
    evicted: int = 0
    later_fragments: int = 0
    reassembled: int = 0  # IP datagrams rebuilt from fragments
    defrag: dict[str, int] = field(default_factory=dict)  # the reassembler's other counters
    malformed: dict[str, int] = field(default_factory=dict)

    def count_batch(self, packets: int, decoded: DecodedBatch) -> None:
        """Count one decoded batch: its packets, rows, non-IP frames and malformed ones."""
        self.packets += packets
        self.rows += len(decoded.rows)
        self.non_ip += decoded.other
        for i, c in enumerate(decoded.malformed):
            if i and c:
                name = MALFORMED_REASONS[i]
                self.malformed[name] = self.malformed.get(name, 0) + int(c)

    def count_table(self, table: FlowTableStats) -> None:
        """Take the flow table's end-of-input counters."""
        self.evicted = table.evicted
        self.later_fragments = table.later_fragments

    def count_defrag(self, stats: DefragStats) -> None:
        """Take the fragment reassembler's end-of-input counters."""
        self.reassembled = stats.reassembled
        self.defrag = {
            "fragments": stats.fragments,
            "overlaps": stats.overlaps,
            "timeouts": stats.timeouts,
            "evicted": stats.evicted,
            "invalid": stats.invalid,
            "truncated": stats.truncated,
        }

    def as_dict(self) -> dict[str, object]:
        return {
            "packets": self.packets,
            "decoded_rows": self.rows,
            "non_ip": self.non_ip,
            "flows": self.flows,
            "evicted": self.evicted,
            "later_fragments": self.later_fragments,
            "reassembled": self.reassembled,
            "defrag": dict(self.defrag),
            "malformed": dict(self.malformed),
        }


def iter_flow_records(
    source: Source,
    config: FlowTableConfig | None = None,
    *,
    stats: PacketPathStats | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[FlowRecords]:
    """Yield the records of flows as they end, then the rest at end of input.

    A `CaptureError` from the source is raised after the flows of every packet
    read before it have been yielded.
    """
    table = FlowTable(config or FlowTableConfig())
    defrag = Defragmenter()
    st = stats if stats is not None else PacketPathStats()
    failure: CaptureError | None = None
    try:
        while (batch := source.next_batch()) is not None:
            if not len(batch):
                continue
            decoded = defrag.reassemble(decode(batch))
            st.count_batch(len(batch), decoded)
            events = table.update(decoded)
            if on_batch is not None:
                on_batch(len(batch))
            if len(events.ended):
                st.flows += len(events.ended)
                yield events.ended
    except CaptureError as exc:
        # a source failing part-way (a damaged file) still gives the flows of every
        # good packet before the damage; the error follows them
        failure = exc
    rest = table.flush()
    st.flows += len(rest)
    st.count_table(table.stats())
    st.count_defrag(defrag.stats)
    if len(rest):
        yield rest
    if failure is not None:
        raise failure
