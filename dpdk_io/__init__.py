"""Capture front ends: every source yields `PacketBatch`es behind one `Source` protocol."""

from dpdk_io.batch import LinkType, PacketBatch, Source, SourceStats
from dpdk_io.errors import CaptureError, CaptureFormatError, SourceUnavailableError

__all__ = [
    "CaptureError",
    "CaptureFormatError",
    "LinkType",
    "PacketBatch",
    "Source",
    "SourceStats",
    "SourceUnavailableError",
]
