"""Checksum verification over a decoded batch: which rows carry a bad IPv4, TCP, UDP or ICMP checksum.

Snort verifies every checksum by default and leaves packets with a bad one out of
inspection; `-k none` (Shrike: `ChecksumMode.parse("none")`) turns that off. One
compiled pass walks the rows; a checksum that cannot be verified because the
capture was cut short, or that belongs to a later fragment, counts as good.
"""

from __future__ import annotations

import enum

import numba
import numpy as np

from engine.decode import F_FRAGMENT, KIND_IP, DecodedBatch


class ChecksumMode(enum.IntFlag):
    """Which checksums to verify (Snort's `-k` / `checksum_eval`)."""

    NONE = 0
    IP = 1
    TCP = 2
    UDP = 4
    ICMP = 8
    ALL = 15

    @classmethod
    def parse(cls, text: str) -> ChecksumMode:
        """`all`, `none`, `noip`, `notcp`, `noudp`, `noicmp`, or a comma list of
        `ip`, `tcp`, `udp`, `icmp` (the spellings Snort's `-k` and `checksum_eval` take)."""
        mode = cls.NONE
        words = [w.strip().lower() for w in text.split(",") if w.strip()]
        if not words:
            raise ValueError("empty checksum mode")
        names = {"ip": cls.IP, "tcp": cls.TCP, "udp": cls.UDP, "icmp": cls.ICMP}
        for word in words:
            if word == "all":
                mode |= cls.ALL
            elif word == "none":
                continue
            elif word.startswith("no") and word[2:] in names:
                mode = (mode or cls.ALL) & ~names[word[2:]]
            elif word in names:
                mode |= names[word]
            else:
                raise ValueError(
                    f"unknown checksum mode {word!r}: expected all, none, noip, notcp, "
                    "noudp, noicmp, ip, tcp, udp or icmp"
                )
        return cls(mode)


@numba.njit(cache=True, inline="always")
def _sum16(buf, even, odd, start, length):
    """The one's complement sum (unfolded) of `buf[start : start + length]` taken as
    little-endian 16-bit words, read from `even` (the buffer's words from byte 0) or
    `odd` (from byte 1): a loop the compiler vectorizes. Swapped after folding, it is
    the network-order sum (RFC 1071)."""
    words = even if start & 1 == 0 else odd
    first = start >> 1
    total = np.uint64(0)
    for k in range(first, first + (length >> 1)):
        total += np.uint64(words[k])
    if length & 1:
        total += np.uint64(buf[start + length - 1])
    return total


@numba.njit(cache=True, inline="always")
def _swap16(value):
    return ((value & np.uint64(0xFF)) << np.uint64(8)) | (value >> np.uint64(8))


@numba.njit(cache=True, inline="always")
def _fold(total):
    while total >> np.uint64(16):
        total = (total & np.uint64(0xFFFF)) + (total >> np.uint64(16))
    return total


@numba.njit(cache=True)
def _bad_kernel(
    buf,
    even,
    odd,
    offsets,
    caplens,
    pkt,
    kind,
    ipver,
    proto,
    flags,
    l3_off,
    l4_off,
    ip_len,
    mode,
    out,
):
    for r in range(pkt.shape[0]):
        out[r] = False
        if kind[r] != KIND_IP:
            continue
        p = pkt[r]
        start = offsets[p]
        cap = caplens[p]
        l3 = start + l3_off[r]
        l4 = start + l4_off[r]
        end = start + cap
        if ipver[r] == 4:
            ihl = (buf[l3] & 15) * 4
            if mode & 1 and l3 + ihl <= end and _fold(_sum16(buf, even, odd, l3, ihl)) != 0xFFFF:
                out[r] = True
                continue
        if flags[r] & F_FRAGMENT:
            continue  # the transport checksum covers the reassembled datagram
        pr = proto[r]
        if pr == 6:
            if not mode & 2:
                continue
        elif pr == 17:
            if not mode & 4:
                continue
        elif pr == 1 or pr == 58:
            if not mode & 8:
                continue
        else:
            continue
        l4_len = l3 + ip_len[r] - l4
        if l4_len <= 0 or l4 + l4_len > end:
            continue  # cut short by the snap length: cannot be verified
        if pr == 17 and ipver[r] == 4 and buf[l4 + 6] == 0 and buf[l4 + 7] == 0:
            continue  # IPv4 UDP without a checksum
        total = _sum16(buf, even, odd, l4, l4_len)
        if pr != 1:
            if ipver[r] == 4:
                total += _sum16(buf, even, odd, l3 + 12, 8)
            else:
                total += _sum16(buf, even, odd, l3 + 8, 32)
            total += _swap16(np.uint64(pr)) + _swap16(np.uint64(l4_len))
        if _fold(total) != 0xFFFF:  # all ones reads the same in either byte order
            out[r] = True


def bad_checksum_rows(decoded: DecodedBatch, mode: ChecksumMode = ChecksumMode.ALL) -> np.ndarray:
    """A boolean array aligned with `decoded.rows`: True where a verified checksum is wrong."""
    rows = decoded.rows
    out = np.zeros(rows.shape[0], dtype=np.bool_)
    if rows.shape[0] == 0 or mode == ChecksumMode.NONE:
        return out
    batch = decoded.batch
    data = batch.data
    _bad_kernel(
        data,
        data[: data.shape[0] & ~1].view("<u2"),
        data[1 : 1 + (max(data.shape[0] - 1, 0) & ~1)].view("<u2"),
        batch.offsets,
        batch.caplens,
        rows["pkt"],
        rows["kind"],
        rows["ipver"],
        rows["proto"],
        rows["flags"],
        rows["l3_off"],
        rows["l4_off"],
        rows["ip_len"],
        int(mode),
        out,
    )
    return out


def bad_checksum_packets(
    decoded: DecodedBatch, mode: ChecksumMode = ChecksumMode.ALL
) -> np.ndarray:
    """A boolean array over the batch's packets: True where any of the packet's rows is bad."""
    out = np.zeros(len(decoded.batch), dtype=np.bool_)
    bad = bad_checksum_rows(decoded, mode)
    if bad.any():
        out[decoded.rows["pkt"][bad]] = True
    return out
