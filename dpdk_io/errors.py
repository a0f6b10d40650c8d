"""The typed errors every capture front end raises."""

from __future__ import annotations


class CaptureError(Exception):
    """Base of every error a capture source raises."""


class CaptureFormatError(CaptureError):
    """A capture file is truncated or corrupt.

    Raised only after every good packet before the damage has been yielded, so a
    caller that catches it has seen all that could be read.
    """

    def __init__(self, path: str, message: str, *, byte_offset: int, packet_index: int) -> None:
        self.path = path
        self.byte_offset = byte_offset
        self.packet_index = packet_index
        self.reason = message
        super().__init__(f"{path}: byte {byte_offset}, packet {packet_index}: {message}")


class SourceUnavailableError(CaptureError):
    """A source cannot start here; the message says what to install or change."""
