"""The packet path with matching: a source through decode, the flow table and the matcher."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from dpdk_io.batch import PacketBatch, Source
from dpdk_io.errors import CaptureError
from engine.decode import DecodedBatch, decode, take_rows
from engine.defrag import Defragmenter
from engine.flows import FlowRecords, FlowTable, FlowTableConfig
from engine.match.matcher import Alert, Matcher
from engine.pipeline import PacketPathStats

ChecksumMask = Callable[[PacketBatch, DecodedBatch], np.ndarray]


def checksum_validator(mode: str = "all") -> ChecksumMask | None:
    """A per-packet bad-checksum mask from `engine.inspect.checksum` (None for `none`, or
    when checksum verification is not installed)."""
    if mode == "none":
        return None
    try:
        module = importlib.import_module("engine.inspect.checksum")
    except ImportError:
        return None
    parsed = module.ChecksumMode.parse(mode)

    def bad(batch: PacketBatch, decoded: DecodedBatch) -> np.ndarray:
        return module.bad_checksum_packets(decoded, parsed)

    return bad


@dataclass(slots=True)
class BatchResult:
    """What one batch gave: its alerts, the flows that ended, and the decoded packets
    (None for the flows still open at end of input)."""

    alerts: list[Alert]
    ended: FlowRecords
    decoded: DecodedBatch | None = None


def iter_matches(
    source: Source,
    matcher: Matcher | None,
    config: FlowTableConfig | None = None,
    *,
    stats: PacketPathStats | None = None,
    on_batch: Callable[[int], None] | None = None,
    checksums: ChecksumMask | None = None,
    before_batch: Callable[[], None] | None = None,
    shard: Callable[[DecodedBatch], np.ndarray] | None = None,
    all_rows: bool = False,
) -> Iterator[BatchResult]:
    """Per batch, the alerts raised, the flows that ended and the decoded packets; then
    the remaining flows. Without a matcher, every batch has no alerts.

    `before_batch` runs between batches (hot reload swaps rulesets there). `shard`
    picks the rows of the flows one worker tracks and matches (`engine.match.workers`);
    every non-empty batch still gives a result, with the shard's rows, or with every
    row when `all_rows`.
    A `CaptureError` is raised after everything read before it was yielded.
    """
    table = FlowTable(config or FlowTableConfig())
    defrag = Defragmenter()
    st = stats if stats is not None else PacketPathStats()
    failure: CaptureError | None = None
    try:
        while (batch := source.next_batch()) is not None:
            if before_batch is not None:
                before_batch()
            if not len(batch):
                continue
            decoded = defrag.reassemble(decode(batch))
            st.count_batch(len(batch), decoded)
            # reassembled datagrams are packets of `decoded.batch`, after the captured ones
            packets = decoded.batch
            every = decoded
            bad = None
            if shard is not None:
                mine = shard(decoded)
                if matcher is not None and checksums is not None:
                    # a packet is bad when any of its rows is, whichever shard the rows
                    # fall to: every row of the packets this shard has rows of is verified
                    bad = checksums(packets, _packets_of(decoded, mine))
                decoded = _rows(decoded, mine)
            elif matcher is not None and checksums is not None:
                bad = checksums(packets, decoded)
            events = table.update(decoded)
            alerts: list[Alert] = []
            if matcher is not None:
                alerts = matcher.scan(packets, decoded, events, bad)
            if on_batch is not None:
                on_batch(len(batch))
            st.flows += len(events.ended)
            yield BatchResult(alerts, events.ended, every if all_rows else decoded)
    except CaptureError as exc:
        failure = exc
    rest = table.flush()
    st.flows += len(rest)
    st.count_table(table.stats())
    st.count_defrag(defrag.stats)
    if len(rest):
        yield BatchResult([], rest)
    if failure is not None:
        raise failure


def _rows(decoded: DecodedBatch, keep: np.ndarray) -> DecodedBatch:
    """`decoded` with the rows `keep` selects (the packets themselves are shared)."""
    return replace(decoded, rows=take_rows(decoded.rows, keep))


def _packets_of(decoded: DecodedBatch, keep: np.ndarray) -> DecodedBatch:
    """`decoded` with every row of the packets that have a row `keep` selects."""
    pkt = decoded.rows["pkt"]
    wanted = np.zeros(len(decoded.batch), dtype=bool)
    wanted[pkt[keep]] = True
    return replace(decoded, rows=take_rows(decoded.rows, wanted[pkt]))
