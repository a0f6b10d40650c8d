"""Running decoded batches through an `Inspector`: the per-row loop a pipeline stage (or a test, or a benchmark) uses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from dpdk_io.batch import PacketBatch
from engine.decode import F_LATER_FRAGMENT, KIND_IP, decode
from engine.flows import FlowTable
from engine.inspect.checksum import ChecksumMode, bad_checksum_rows
from engine.inspect.config import PacketContext
from engine.inspect.inspector import Inspector


@dataclass(frozen=True, slots=True)
class InspectedRow:
    """One inspected row: its batch, its index in the decoded rows, the packet's
    capture-wide index, and what the inspector made of it."""

    batch: PacketBatch | None  # None for what `Inspector.flush` gave at the end of input
    row: int
    packet_index: int
    flow: int
    context: PacketContext


def inspect_batches(
    batches: Iterable[PacketBatch],
    inspector: Inspector,
    *,
    flows: FlowTable | None = None,
    checksums: ChecksumMode = ChecksumMode.ALL,
) -> Iterator[InspectedRow]:
    """Decode, track flows and inspect every TCP row and every UDP row with payload;
    rows with a bad checksum (per `checksums`) and later fragments are left out. At
    the end of the input every flow is flushed (rows with `batch` None, `row` -1)."""
    table = flows if flows is not None else FlowTable()
    for batch in batches:
        decoded = decode(batch)
        events = table.update(decoded)
        rows = decoded.rows
        bad = bad_checksum_rows(decoded, checksums)
        row_new = events.row_new
        if row_new.shape[0] != rows.shape[0]:
            row_new = np.zeros(rows.shape[0], dtype=np.int8)
        data = batch.data
        offsets = batch.offsets
        caplens = batch.caplens
        for i in np.flatnonzero(
            (rows["kind"] == KIND_IP)
            & (events.row_flow >= 0)
            & ((rows["proto"] == 6) | ((rows["proto"] == 17) & (rows["payload_len"] > 0)))
            & ((rows["flags"] & F_LATER_FRAGMENT) == 0)
            & ~bad
        ):
            r = rows[i]
            p = int(r["pkt"])
            start = int(offsets[p])
            lo = start + int(r["payload_off"])
            hi = min(lo + int(r["payload_len"]), start + int(caplens[p]))
            payload = data[lo:hi].tobytes() if hi > lo else b""
            flow = int(events.row_flow[i])
            ctx = inspector.packet(
                flow,
                bool(row_new[i]),
                int(events.row_dir[i]) == 0,
                int(r["proto"]),
                int(r["sport"]),
                int(r["dport"]),
                int(r["tcp_flags"]),
                int(r["tcp_seq"]),
                payload,
                int(r["ts"]),
            )
            yield InspectedRow(batch, int(i), batch.first_index + p, flow, ctx)
    for flow in inspector.flows():
        for ctx in inspector.flush(flow):
            yield InspectedRow(None, -1, -1, flow, ctx)
