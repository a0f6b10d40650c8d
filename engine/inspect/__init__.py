"""Inspection buffers for the matcher: TCP reassembly, application protocol detection,
HTTP/1.x, DNS, TLS, SSH and SMTP parsing into the rule language's sticky buffers, and
checksum verification."""

from __future__ import annotations

from engine.inspect.checksum import ChecksumMode, bad_checksum_packets, bad_checksum_rows
from engine.inspect.config import InspectConfig, InspectStats, PacketContext
from engine.inspect.inspector import Inspector

__all__ = [
    "ChecksumMode",
    "InspectConfig",
    "InspectStats",
    "Inspector",
    "PacketContext",
    "bad_checksum_packets",
    "bad_checksum_rows",
]
