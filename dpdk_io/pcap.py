"""Reading pcap and pcapng capture files into `PacketBatch`es without a Python object per packet.

The file is memory-mapped and batches point into the mapping (zero copy); a
compiled kernel walks the record headers. A damaged file yields every good
packet first, then raises `CaptureFormatError` naming the byte offset and the
packet index where the damage starts.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Literal

import numba
import numpy as np

from dpdk_io.batch import PacketBatch, SourceStats
from dpdk_io.errors import CaptureError, CaptureFormatError

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D

# The largest record a sane capture holds: libpcap's MAXIMUM_SNAPLEN.
MAX_RECORD = 262_144

# Kernel status codes; anything above OK_* is damage at the returned position.
OK_MORE = 0
OK_EOF = 1
ERR_SHORT_HEADER = 2
ERR_SHORT_DATA = 3
ERR_BAD_LENGTH = 4
ERR_BLOCK = 5
ERR_INTERFACE = 6
ERR_LINKTYPE = 7

_ERROR_TEXT = {
    ERR_SHORT_HEADER: "file ends inside a record header (truncated capture)",
    ERR_SHORT_DATA: "file ends inside packet data (truncated capture)",
    ERR_BAD_LENGTH: "record length is impossible (corrupt capture)",
    ERR_BLOCK: "pcapng block length is impossible (corrupt capture)",
    ERR_INTERFACE: "pcapng packet names an interface that was never described",
}


@numba.njit(cache=True, nogil=True)
def _u32(buf, pos, swapped):
    if swapped:
        return (
            (np.uint32(buf[pos]) << 24)
            | (np.uint32(buf[pos + 1]) << 16)
            | (np.uint32(buf[pos + 2]) << 8)
            | np.uint32(buf[pos + 3])
        )
    return (
        np.uint32(buf[pos])
        | (np.uint32(buf[pos + 1]) << 8)
        | (np.uint32(buf[pos + 2]) << 16)
        | (np.uint32(buf[pos + 3]) << 24)
    )


@numba.njit(cache=True, nogil=True)
def _index_pcap(buf, pos, end, swapped, ns_resolution, snaplen_cap, offsets, caplens, wirelens, ts):
    """Walk classic pcap records from `pos`; fill the arrays; return (count, next_pos, status)."""
    n = 0
    cap = offsets.shape[0]
    frac_scale = 1 if ns_resolution else 1000
    while n < cap:
        if pos == end:
            return n, pos, OK_EOF
        if end - pos < 16:
            return n, pos, ERR_SHORT_HEADER
        sec = _u32(buf, pos, swapped)
        frac = _u32(buf, pos + 4, swapped)
        incl = _u32(buf, pos + 8, swapped)
        orig = _u32(buf, pos + 12, swapped)
        if incl > snaplen_cap:
            return n, pos, ERR_BAD_LENGTH
        if end - pos - 16 < incl:
            return n, pos, ERR_SHORT_DATA
        offsets[n] = pos + 16
        caplens[n] = incl
        wirelens[n] = orig if orig >= incl else incl
        ts[n] = np.int64(sec) * 1_000_000_000 + np.int64(frac) * frac_scale
        pos += 16 + incl
        n += 1
    return n, pos, OK_MORE


@numba.njit(cache=True, nogil=True)
def _index_pcapng(
    buf,
    pos,
    end,
    swapped,
    if_linktype,
    if_tsmul,
    if_tsdiv,
    want_linktype,
    offsets,
    caplens,
    wirelens,
    ts,
):
    """Walk pcapng packet blocks of one link type from `pos`.

    Stops (status OK_MORE) at any block it does not index itself: a section or
    interface description, a packet on another link type, or full arrays; the
    Python side handles that block and calls again. Returns (count, pos, status).
    """
    n = 0
    cap = offsets.shape[0]
    n_if = if_linktype.shape[0]
    while n < cap:
        if pos == end:
            return n, pos, OK_EOF
        if end - pos < 12:
            return n, pos, ERR_SHORT_HEADER
        btype = _u32(buf, pos, swapped)
        blen = _u32(buf, pos + 4, swapped)
        if blen < 12 or blen % 4 != 0 or blen > MAX_RECORD + 4096 + 64:
            return n, pos, ERR_BLOCK
        if end - pos < blen:
            return n, pos, ERR_SHORT_DATA
        if btype == 6:  # enhanced packet block
            if blen < 32:
                return n, pos, ERR_BLOCK
            iface = _u32(buf, pos + 8, swapped)
            if iface >= n_if:
                return n, pos, ERR_INTERFACE
            if if_linktype[iface] != want_linktype:
                return n, pos, OK_MORE
            hi = _u32(buf, pos + 12, swapped)
            lo = _u32(buf, pos + 16, swapped)
            incl = _u32(buf, pos + 20, swapped)
            orig = _u32(buf, pos + 24, swapped)
            if incl > blen - 32:
                return n, pos, ERR_BAD_LENGTH
            raw = (np.int64(hi) << 32) | np.int64(lo)
            offsets[n] = pos + 28
            caplens[n] = incl
            wirelens[n] = orig if orig >= incl else incl
            ts[n] = raw * if_tsmul[iface] // if_tsdiv[iface]
            n += 1
            pos += blen
        elif btype == 3:  # simple packet block: interface 0, no timestamp
            if blen < 16:
                return n, pos, ERR_BLOCK
            if n_if == 0:
                return n, pos, ERR_INTERFACE
            if if_linktype[0] != want_linktype:
                return n, pos, OK_MORE
            orig = _u32(buf, pos + 8, swapped)
            incl = min(orig, blen - 16)
            offsets[n] = pos + 12
            caplens[n] = incl
            wirelens[n] = orig
            ts[n] = 0
            n += 1
            pos += blen
        elif btype == 1 or btype == PCAPNG_SHB:
            return n, pos, OK_MORE
        else:
            pos += blen  # statistics, name resolution, custom blocks: not packets
    return n, pos, OK_MORE


class PcapSource:
    """A `Source` over one pcap or pcapng file.

    Damage raises `CaptureFormatError` from `next_batch()` only after every
    good packet before it has been returned in earlier batches.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 65_536) -> None:
        self.path = str(path)
        self.batch_size = batch_size
        self._stats = SourceStats()
        self._index = 0
        self._pending_error: CaptureFormatError | None = None
        self._done = False
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - lives as long as the source
        except OSError as exc:
            raise CaptureError(f"{self.path}: cannot open capture: {exc.strerror}") from exc
        size = os.fstat(self._fh.fileno()).st_size
        if size == 0:
            self._fh.close()
            raise CaptureFormatError(
                self.path, "empty file, not a capture", byte_offset=0, packet_index=0
            )
        self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._buf = np.frombuffer(self._map, dtype=np.uint8)
        self._end = size
        self._alloc()
        magic_le = int.from_bytes(self._map[:4], "little") if size >= 4 else 0
        if magic_le == PCAPNG_SHB:
            self.format = "pcapng"
            self._pos = 0
            self._swapped = False
            self._if_linktype = np.zeros(0, dtype=np.int64)
            self._if_tsmul = np.zeros(0, dtype=np.int64)
            self._if_tsdiv = np.zeros(0, dtype=np.int64)
        else:
            self.format = "pcap"
            self._open_pcap(magic_le)

    def _alloc(self) -> None:
        n = self.batch_size
        self._offsets = np.empty(n, dtype=np.int64)
        self._caplens = np.empty(n, dtype=np.int32)
        self._wirelens = np.empty(n, dtype=np.int32)
        self._ts = np.empty(n, dtype=np.int64)

    def _order(self) -> Literal["big", "little"]:
        return "big" if self._swapped else "little"

    def _fail(self, message: str, offset: int) -> CaptureFormatError:
        return CaptureFormatError(self.path, message, byte_offset=offset, packet_index=self._index)

    def _open_pcap(self, magic_le: int) -> None:
        if self._end < 24:
            self.close()
            raise self._fail("file too short for a pcap header (truncated or not a capture)", 0)
        magic_be = int.from_bytes(self._map[:4], "big")
        if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            self._swapped, magic = False, magic_le
        elif magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            self._swapped, magic = True, magic_be
        else:
            self.close()
            raise self._fail(f"unknown magic number 0x{magic_le:08x}: not a pcap or pcapng file", 0)
        order = self._order()
        self._ns = magic == PCAP_MAGIC_NS
        snaplen = int.from_bytes(self._map[16:20], order)
        self._snaplen_cap = max(snaplen, MAX_RECORD) if snaplen else MAX_RECORD
        linktype = int.from_bytes(self._map[20:24], order) & 0x0FFFFFFF
        self.linktype = linktype
        self._pos = 24

    # -- pcapng blocks the kernel hands back to Python -------------------------

    def _section_header(self) -> None:
        pos, m = self._pos, self._map
        if self._end - pos < 28:
            raise self._fail("file ends inside a pcapng section header", pos)
        bom = m[pos + 8 : pos + 12]
        if int.from_bytes(bom, "little") == PCAPNG_BOM:
            self._swapped = False
        elif int.from_bytes(bom, "big") == PCAPNG_BOM:
            self._swapped = True
        else:
            raise self._fail("pcapng section header has a bad byte-order magic", pos + 8)
        order = self._order()
        blen = int.from_bytes(m[pos + 4 : pos + 8], order)
        if blen < 28 or blen % 4 or self._end - pos < blen:
            raise self._fail("pcapng section header length is impossible", pos + 4)
        # a new section starts a new interface numbering
        self._if_linktype = np.zeros(0, dtype=np.int64)
        self._if_tsmul = np.zeros(0, dtype=np.int64)
        self._if_tsdiv = np.zeros(0, dtype=np.int64)
        self._pos = pos + blen

    def _interface_block(self) -> None:
        pos, m = self._pos, self._map
        order = self._order()
        blen = int.from_bytes(m[pos + 4 : pos + 8], order)
        if blen < 20 or blen % 4 or self._end - pos < blen:
            raise self._fail("pcapng interface description is truncated", pos)
        linktype = int.from_bytes(m[pos + 8 : pos + 10], order)
        mul, div = self._tsresol(pos + 16, pos + blen - 4, order)
        self._if_linktype = np.append(self._if_linktype, linktype)
        self._if_tsmul = np.append(self._if_tsmul, mul)
        self._if_tsdiv = np.append(self._if_tsdiv, div)
        self._pos = pos + blen

    def _tsresol(self, start: int, end: int, order: Literal["big", "little"]) -> tuple[int, int]:
        """Timestamp units of an interface as (mul, div) converting raw ticks to ns."""
        m = self._map
        pos = start
        while pos + 4 <= end:
            code = int.from_bytes(m[pos : pos + 2], order)
            length = int.from_bytes(m[pos + 2 : pos + 4], order)
            if code == 0:
                break
            if code == 9 and length >= 1:
                v = m[pos + 4]
                if v & 0x80:  # power of two
                    exp = v & 0x7F
                    return (1_000_000_000, 1 << exp)
                exp = v
                if exp <= 9:
                    return (10 ** (9 - exp), 1)
                return (1, 10 ** (exp - 9))
            pos += 4 + ((length + 3) & ~3)
        return (1000, 1)  # default: microseconds

    # -- Source protocol --------------------------------------------------------

    def next_batch(self) -> PacketBatch | None:
        if self._pending_error is not None:
            err, self._pending_error = self._pending_error, None
            self._done = True
            raise err
        while not self._done:
            if self.format == "pcap":
                n, pos, status = _index_pcap(
                    self._buf,
                    self._pos,
                    self._end,
                    self._swapped,
                    self._ns,
                    self._snaplen_cap,
                    self._offsets,
                    self._caplens,
                    self._wirelens,
                    self._ts,
                )
                linktype = self.linktype
            else:
                n, pos, status, linktype = self._next_pcapng()
            n, self._pos, status = int(n), int(pos), int(status)
            if status >= ERR_SHORT_HEADER:
                # hand out the good packets first; the damage is reported on the next call
                self._pending_error = CaptureFormatError(
                    self.path,
                    _ERROR_TEXT[status],
                    byte_offset=self._pos,
                    packet_index=self._index + n,
                )
            elif status == OK_EOF:
                self._done = True
            if n:
                return self._emit(n, linktype)
            if self._pending_error is not None:
                return self.next_batch()
        return None

    def _emit(self, n: int, linktype: int) -> PacketBatch:
        batch = PacketBatch(
            data=self._buf,
            offsets=self._offsets[:n].copy(),
            caplens=self._caplens[:n].copy(),
            wirelens=self._wirelens[:n].copy(),
            timestamps=self._ts[:n].copy(),
            linktype=int(linktype),
            first_index=self._index,
        )
        self._index += n
        s = self._stats
        s.packets += n
        s.bytes += int(batch.caplens.sum())
        s.batches += 1
        return batch

    def _next_pcapng(self) -> tuple[int, int, int, int]:
        while True:
            if self._pos >= self._end:
                return 0, self._pos, OK_EOF, 0
            if self._end - self._pos < 12:
                return 0, self._pos, ERR_SHORT_HEADER, 0
            want = self._pcapng_header_blocks()
            if want is None:
                continue
            n, pos, status = _index_pcapng(
                self._buf,
                self._pos,
                self._end,
                self._swapped,
                self._if_linktype,
                self._if_tsmul,
                self._if_tsdiv,
                want,
                self._offsets,
                self._caplens,
                self._wirelens,
                self._ts,
            )
            if n == 0 and status == OK_MORE:
                self._pos = int(pos)
                continue  # only skipped non-packet blocks; look again
            return n, pos, status, want

    def _pcapng_header_blocks(self) -> int | None:
        """Consume a section or interface block at `_pos` (return None), or name the link type
        of the packet block there (-1 for blocks that carry no packet)."""
        order = self._order()
        m, pos = self._map, self._pos
        if int.from_bytes(m[pos : pos + 4], "little") == PCAPNG_SHB:
            self._section_header()
            return None
        btype = int.from_bytes(m[pos : pos + 4], order)
        if btype == 1:
            self._interface_block()
            return None
        if btype in (3, 6):
            iface = int.from_bytes(m[pos + 8 : pos + 12], order) if btype == 6 else 0
            if iface >= len(self._if_linktype):
                raise self._fail(_ERROR_TEXT[ERR_INTERFACE], pos)
            return int(self._if_linktype[iface])
        return -1

    def stats(self) -> SourceStats:
        return self._stats

    def close(self) -> None:
        buf = getattr(self, "_buf", None)
        if buf is not None:
            del self._buf
        m = getattr(self, "_map", None)
        if m is not None:
            # batches handed out may still view the mapping; it is freed with them then
            with contextlib.suppress(BufferError):
                m.close()
            self._map = None  # type: ignore[assignment]
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()

    def __enter__(self) -> PcapSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[PacketBatch]:
        while (batch := self.next_batch()) is not None:
            yield batch


def read_all(path: str | Path) -> list[PacketBatch]:
    """Every batch of a capture (tests and small files)."""
    with PcapSource(path) as src:
        return list(src)
