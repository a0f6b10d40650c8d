"""`PacketBatch`, the unit every capture source hands to the engine, and the `Source` protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np


class LinkType(IntEnum):
    """Link-layer header types (LINKTYPE_* values of the pcap spec) the decoder understands."""

    NULL = 0  # BSD loopback, host byte order AF_ value
    ETHERNET = 1
    RAW = 101  # raw IPv4 or IPv6, version nibble decides
    LOOP = 108  # OpenBSD loopback, network byte order AF_ value
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


@dataclass(frozen=True, slots=True)
class PacketBatch:
    """A run of captured packets sharing one link type.

    `data` is one contiguous byte buffer; packet i is
    `data[offsets[i] : offsets[i] + caplens[i]]`. `wirelens` are the original
    lengths on the wire, `timestamps` are nanoseconds since the epoch, and
    `first_index` is the capture-wide index (0-based) of packet 0, so errors
    and alerts can name a packet.
    """

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64
    caplens: np.ndarray  # int32
    wirelens: np.ndarray  # int32
    timestamps: np.ndarray  # int64, ns
    linktype: int
    first_index: int = 0

    def __post_init__(self) -> None:
        # Packets are never written to, and every batch's bytes reach the compiled
        # kernels as one array type: they specialise on whether an array is writable,
        # and a source's mapped file is not while a built batch would be, so each
        # kernel would load a second compiled version partway through a capture.
        if self.data.flags.writeable:
            view = self.data.view()
            view.flags.writeable = False
            object.__setattr__(self, "data", view)

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    def packet_number(self, i: int) -> int:
        """The 1-based capture number of packet i (the one it was built from, for a
        packet made from others such as a reassembled datagram)."""
        return self.first_index + i + 1

    def packet(self, i: int) -> bytes:
        """Bytes of packet i (for tests and pretty-printing, never the hot path)."""
        start = int(self.offsets[i])
        return self.data[start : start + int(self.caplens[i])].tobytes()

    @classmethod
    def from_packets(
        cls,
        packets: list[bytes],
        timestamps_ns: list[int],
        linktype: int,
        *,
        wirelens: list[int] | None = None,
        first_index: int = 0,
    ) -> PacketBatch:
        """Build a batch from separate packets (tests and slow sources)."""
        caplens = np.fromiter((len(p) for p in packets), dtype=np.int32, count=len(packets))
        offsets = np.zeros(len(packets), dtype=np.int64)
        if len(packets) > 1:
            np.cumsum(caplens[:-1], out=offsets[1:])
        data = np.frombuffer(b"".join(packets), dtype=np.uint8).copy()
        wl = caplens.copy() if wirelens is None else np.asarray(wirelens, dtype=np.int32)
        return cls(
            data=data,
            offsets=offsets,
            caplens=caplens,
            wirelens=wl,
            timestamps=np.asarray(timestamps_ns, dtype=np.int64),
            linktype=int(linktype),
            first_index=first_index,
        )


@dataclass(slots=True)
class SourceStats:
    """Counters every source keeps; `dropped` is what the capture layer reports lost."""

    packets: int = 0
    bytes: int = 0
    batches: int = 0
    dropped: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "batches": self.batches,
            "dropped": self.dropped,
            **self.extra,
        }


@runtime_checkable
class Source(Protocol):
    """What the engine reads packets from.

    `next_batch()` returns the next non-empty batch, or None when the source is
    exhausted (a live source returns None only after `close()` or its packet
    limit; with nothing captured within its poll interval it returns an empty
    batch so the caller can tick timers).
    """

    def next_batch(self) -> PacketBatch | None: ...

    def stats(self) -> SourceStats: ...

    def close(self) -> None: ...

    def __enter__(self) -> Source: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def empty_batch(linktype: int, first_index: int = 0) -> PacketBatch:
    z64 = np.zeros(0, dtype=np.int64)
    z32 = np.zeros(0, dtype=np.int32)
    return PacketBatch(np.zeros(0, dtype=np.uint8), z64, z32, z32, z64, linktype, first_index)
