"""`LiveSource`: capture from a Linux network interface through an AF_PACKET TPACKET_V3 ring with a kernel BPF filter."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import select
import socket
import struct
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from dpdk_io.batch import LinkType, PacketBatch, SourceStats, empty_batch
from dpdk_io.bpf import MAX_SNAPLEN, attach_filter, compile_filter
from dpdk_io.errors import CaptureError, SourceUnavailableError

# linux/if_packet.h, linux/if_ether.h, linux/if_arp.h, linux/sockios.h, linux/if.h
_SOL_PACKET = 263
_PACKET_ADD_MEMBERSHIP = 1
_PACKET_RX_RING = 5
_PACKET_STATISTICS = 6
_PACKET_VERSION = 10
_PACKET_IGNORE_OUTGOING = 23
_TPACKET_V3 = 2
_PACKET_MR_PROMISC = 1
_PACKET_OUTGOING = 4
_ETH_P_ALL = 0x0003
_TP_STATUS_KERNEL = 0
_TP_STATUS_USER = 1
_TP_STATUS_VLAN_VALID = 1 << 4
_TP_STATUS_VLAN_TPID_VALID = 1 << 6
_ETH_P_8021Q = 0x8100
_SIOCGIFFLAGS = 0x8913
_SIOCGIFHWADDR = 0x8927
_IFF_UP = 0x1
_IFNAMSIZ = 16

_ARPHRD_ETHER = 1
_ARPHRD_RAWIP = 519
_ARPHRD_LOOPBACK = 772
_ARPHRD_NONE = 0xFFFE
# What a SOCK_RAW packet socket hands us on each kind of device. Loopback
# frames carry a zeroed Ethernet header, so they decode as Ethernet; tun and
# raw-IP devices have no link header at all.
_LINKTYPE_BY_HATYPE: dict[int, LinkType] = {
    _ARPHRD_ETHER: LinkType.ETHERNET,
    _ARPHRD_LOOPBACK: LinkType.ETHERNET,
    _ARPHRD_NONE: LinkType.RAW,
    _ARPHRD_RAWIP: LinkType.RAW,
}

# Layout of a TPACKET_V3 block (struct tpacket_block_desc) and of each packet
# header in it (struct tpacket3_hdr followed by struct sockaddr_ll at 48), as
# uint32-word indices from their start.
_BLOCK_STATUS_WORD = 2
_BLOCK_NUM_PKTS_WORD = 3
_BLOCK_FIRST_PKT_WORD = 4
_PKT_NEXT_WORD = 0
_PKT_SEC_WORD = 1
_PKT_NSEC_WORD = 2
_PKT_SNAPLEN_WORD = 3
_PKT_LEN_WORD = 4
_PKT_STATUS_WORD = 5
_PKT_VLAN_TCI_WORD = 8  # hv1.tp_vlan_tci
_PKT_VLAN_TPID_HALFWORD = 18  # hv1.tp_vlan_tpid
_PKT_MAC_HALFWORD = 12  # tp_mac is a uint16 at byte 24
_PKT_PKTTYPE_BYTE = 48 + 10  # sockaddr_ll.sll_pkttype
_TPACKET3_HDRLEN = 48 + 20 + 12  # header, sockaddr_ll, and room up to the aligned network header

_MIN_BLOCK_SIZE = 1 << 20
_FRAME_SIZE = 2048  # V3 packs packets back to back; the kernel only checks frame arithmetic
_STATS_V3 = struct.Struct("=III")  # struct tpacket_stats_v3
_IFREQ_FLAGS = struct.Struct(f"={_IFNAMSIZ}sh22x")
_IFREQ_HWADDR = struct.Struct(f"={_IFNAMSIZ}sH22x")  # sockaddr.sa_family holds ARPHRD_*
_PACKET_MREQ = struct.Struct("=iHH8s")
_TPACKET_REQ3 = struct.Struct("=7I")


@dataclass(slots=True)
class _PendingPackets:
    """Packets copied out of one ring block and not yet handed out; `cursor` is the next one to hand out."""

    data: np.ndarray
    offsets: np.ndarray
    caplens: np.ndarray
    wirelens: np.ndarray
    timestamps: np.ndarray
    cursor: int = 0

    def remaining(self) -> int:
        return int(self.offsets.shape[0]) - self.cursor


class LiveSource:
    """Packets from a live interface, filtered in the kernel, read in batches from a memory-mapped ring.

    The kernel fills fixed-size blocks of the ring and hands a block over when
    it is full or `timeout_ms` after its first packet, so a busy link costs one
    wakeup per block rather than per packet. `next_batch()` copies whole
    blocks out, returns them to the kernel at once, and gives back at most
    `batch_size` packets; with nothing captured for `timeout_ms` it returns an
    empty batch so the caller can run its timers.

    On the loopback interface every packet passes the capture point twice,
    once leaving and once arriving; the leaving copy is dropped so each packet
    is seen once (kernel-side with PACKET_IGNORE_OUTGOING where available).
    Not thread-safe: one reader per source.
    """

    def __init__(
        self,
        interface: str,
        *,
        bpf_filter: str | None = None,
        snaplen: int = 65535,
        batch_size: int = 4096,
        timeout_ms: int = 100,
        promiscuous: bool = False,
        packet_limit: int | None = None,
        buffer_bytes: int = 32 << 20,
    ) -> None:
        if not 1 <= snaplen <= MAX_SNAPLEN:
            raise ValueError(f"snaplen must be between 1 and {MAX_SNAPLEN}, got {snaplen}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if timeout_ms < 1:
            raise ValueError(f"timeout_ms must be at least 1, got {timeout_ms}")
        if packet_limit is not None and packet_limit < 0:
            raise ValueError(f"packet_limit must be 0 or more, got {packet_limit}")

        self.interface = interface
        self.bpf_filter = bpf_filter
        self.snaplen = snaplen
        self.batch_size = batch_size
        self.timeout_ms = timeout_ms
        self.promiscuous = promiscuous
        self.packet_limit = packet_limit

        self._stats = SourceStats()
        self._stats.extra.update(
            kernel_packets=0, kernel_freeze_q=0, outgoing_skipped=0, vlan_tags_restored=0
        )
        self._pending: list[_PendingPackets] = []
        self._next_block = 0
        self._closed = False

        ifindex = _interface_index(interface)
        sock = _open_packet_socket(interface)
        ring: mmap.mmap | None = None
        try:
            hatype = _require_up(sock, interface)
            self.linktype = _linktype_for(interface, hatype)
            self._is_loopback = hatype == _ARPHRD_LOOPBACK
            # The filter goes on before bind(): until then the socket listens
            # to no protocol, so no unfiltered packet reaches the ring.
            program = compile_filter(bpf_filter or "", self.linktype, snaplen=snaplen)
            attach_filter(sock, program)
            if self._is_loopback:
                _ignore_outgoing(sock)
            self._block_size = _block_size_for(snaplen)
            self._block_count = max(2, buffer_bytes // self._block_size)
            ring = self._map_ring(sock)
            if promiscuous:
                _enable_promiscuous(sock, interface, ifindex)
            try:
                sock.bind((interface, _ETH_P_ALL))
            except OSError as exc:
                raise SourceUnavailableError(
                    f"cannot bind a packet socket to {interface}: {exc.strerror}"
                ) from exc
            # The interface may have gone down between the flag check and bind().
            _raise_socket_error(sock, interface)
        except BaseException:
            if ring is not None:
                ring.close()
            sock.close()
            raise
        self._sock = sock
        self._ring = ring
        self._ring_bytes = np.frombuffer(ring, dtype=np.uint8)
        self._ring_words = self._ring_bytes.view(np.uint32)
        self._ring_halves = self._ring_bytes.view(np.uint16)
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN | select.POLLERR)

    def _map_ring(self, sock: socket.socket) -> mmap.mmap:
        try:
            sock.setsockopt(_SOL_PACKET, _PACKET_VERSION, _TPACKET_V3)
            request = _TPACKET_REQ3.pack(
                self._block_size,
                self._block_count,
                _FRAME_SIZE,
                self._block_count * (self._block_size // _FRAME_SIZE),
                self.timeout_ms,  # the kernel hands over a part-filled block after this long
                0,
                0,
            )
            sock.setsockopt(_SOL_PACKET, _PACKET_RX_RING, request)
            return mmap.mmap(
                sock.fileno(),
                self._block_size * self._block_count,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
        except OSError as exc:
            raise SourceUnavailableError(
                f"cannot set up a {self._block_count} x {self._block_size} byte TPACKET_V3 ring "
                f"on {self.interface}: {exc.strerror}; try a smaller buffer_bytes or snaplen"
            ) from exc

    # -- reading -----------------------------------------------------------

    def next_batch(self) -> PacketBatch | None:
        """Up to `batch_size` packets; an empty batch after `timeout_ms` without any; None once closed or at the packet limit."""
        if self._closed:
            return None
        wanted = self.batch_size
        if self.packet_limit is not None:
            wanted = min(wanted, self.packet_limit - self._stats.packets)
            if wanted <= 0:
                return None
        available = sum(p.remaining() for p in self._pending)
        polled = False
        while available < wanted:
            block = self._take_block()
            if block is not None:
                if block.remaining():
                    self._pending.append(block)
                    available += block.remaining()
                continue
            if available or polled:
                break
            polled = True
            events = self._poller.poll(self.timeout_ms)
            if any(ev & select.POLLERR for _, ev in events):
                _raise_socket_error(self._sock, self.interface)
        if not available:
            return empty_batch(self.linktype, self._stats.packets)
        return self._assemble(min(wanted, available))

    def _take_block(self) -> _PendingPackets | None:
        """Copy the next block out of the ring if the kernel has handed it over, and give it back."""
        words = self._ring_words
        base = self._next_block * self._block_size
        status_at = base // 4 + _BLOCK_STATUS_WORD
        if not int(words[status_at]) & _TP_STATUS_USER:
            return None
        num_pkts = int(words[base // 4 + _BLOCK_NUM_PKTS_WORD])
        headers = np.empty(num_pkts, dtype=np.int64)
        offset = int(words[base // 4 + _BLOCK_FIRST_PKT_WORD])
        for i in range(num_pkts):
            headers[i] = offset
            offset += int(words[(base + offset) // 4 + _PKT_NEXT_WORD])
        end = 0
        if num_pkts:
            # Copy up to the end of the last packet's bytes, not the whole block.
            last = (base + int(headers[-1])) // 2
            mac = int(self._ring_halves[last + _PKT_MAC_HALFWORD])
            snaplen = int(words[last // 2 + _PKT_SNAPLEN_WORD])
            end = int(headers[-1]) + mac + snaplen
        data = self._ring_bytes[base : base + end].copy()
        # Everything needed is copied, so the block goes straight back to the kernel.
        words[status_at] = _TP_STATUS_KERNEL
        self._next_block = (self._next_block + 1) % self._block_count
        return self._parse_block(data, headers)

    def _parse_block(self, data: np.ndarray, headers: np.ndarray) -> _PendingPackets:
        words = data[: (data.shape[0] // 4) * 4].view(np.uint32)
        halves = data[: (data.shape[0] // 2) * 2].view(np.uint16)
        at = headers // 4
        sec = words[at + _PKT_SEC_WORD].astype(np.int64)
        nsec = words[at + _PKT_NSEC_WORD].astype(np.int64)
        caplens = words[at + _PKT_SNAPLEN_WORD].astype(np.int32)
        wirelens = words[at + _PKT_LEN_WORD].astype(np.int32)
        statuses = words[at + _PKT_STATUS_WORD]
        offsets = headers + halves[headers // 2 + _PKT_MAC_HALFWORD].astype(np.int64)
        timestamps = sec * 1_000_000_000 + nsec
        if self._is_loopback:
            keep = data[headers + _PKT_PKTTYPE_BYTE] != _PACKET_OUTGOING
            skipped = int(keep.shape[0] - np.count_nonzero(keep))
            if skipped:
                self._stats.extra["outgoing_skipped"] += skipped
                headers, offsets, caplens, wirelens, timestamps, statuses = (
                    headers[keep],
                    offsets[keep],
                    caplens[keep],
                    wirelens[keep],
                    timestamps[keep],
                    statuses[keep],
                )
        if self.linktype == LinkType.ETHERNET:
            tagged = np.flatnonzero((statuses & _TP_STATUS_VLAN_VALID) != 0)
            if tagged.shape[0]:
                data = self._reinsert_vlan_tags(
                    data, words, halves, tagged, headers, offsets, caplens, wirelens, statuses
                )
        # The filter already truncates to snaplen; this guards a filter-less kernel path.
        np.minimum(caplens, self.snaplen, out=caplens)
        return _PendingPackets(data, offsets, caplens, wirelens, timestamps)

    def _reinsert_vlan_tags(
        self,
        data: np.ndarray,
        words: np.ndarray,
        halves: np.ndarray,
        tagged: np.ndarray,
        headers: np.ndarray,
        offsets: np.ndarray,
        caplens: np.ndarray,
        wirelens: np.ndarray,
        statuses: np.ndarray,
    ) -> np.ndarray:
        """Put back the 802.1Q tags the kernel moved into the ring headers; returns the grown buffer.

        Linux takes the outermost VLAN tag off every received frame before
        packet sockets see it, so without this a tagged frame would reach the
        decoder looking untagged. The rebuilt frames are appended to the
        block's bytes and their offsets, caplens and wirelens updated in place.
        """
        rebuilt: list[bytes] = []
        size = int(data.shape[0])
        for i in tagged.tolist():
            header = int(headers[i])
            start, length = int(offsets[i]), int(caplens[i])
            if length < 12:
                continue  # too short to hold the MAC addresses the tag follows
            tci = int(words[header // 4 + _PKT_VLAN_TCI_WORD]) & 0xFFFF
            tpid = _ETH_P_8021Q
            if int(statuses[i]) & _TP_STATUS_VLAN_TPID_VALID:
                tpid = int(halves[header // 2 + _PKT_VLAN_TPID_HALFWORD])
            frame = data[start : start + length].tobytes()
            frame = frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]
            offsets[i] = size
            caplens[i] = len(frame)
            wirelens[i] += 4
            size += len(frame)
            rebuilt.append(frame)
        self._stats.extra["vlan_tags_restored"] += len(rebuilt)
        if not rebuilt:
            return data
        return np.concatenate((data, np.frombuffer(b"".join(rebuilt), dtype=np.uint8)))

    def _assemble(self, count: int) -> PacketBatch:
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        taken = 0
        while taken < count:
            pending = self._pending[0]
            n = min(count - taken, pending.remaining())
            lo, hi = pending.cursor, pending.cursor + n
            parts.append(
                (
                    pending.data,
                    pending.offsets[lo:hi],
                    pending.caplens[lo:hi],
                    pending.wirelens[lo:hi],
                    pending.timestamps[lo:hi],
                )
            )
            pending.cursor = hi
            if not pending.remaining():
                self._pending.pop(0)
            taken += n

        if len(parts) == 1:
            data, offsets, caplens, wirelens, timestamps = parts[0]
        else:
            # Several blocks: keep only each block's span of packet bytes and rebase offsets.
            chunks: list[np.ndarray] = []
            rebased: list[np.ndarray] = []
            size = 0
            for block_data, offs, caps, _, _ in parts:
                # Frames with a restored VLAN tag sit after the block's own bytes.
                start = int(offs.min())
                stop = int((offs + caps).max())
                chunks.append(block_data[start:stop])
                rebased.append(offs - start + size)
                size += stop - start
            data = np.concatenate(chunks)
            offsets = np.concatenate(rebased)
            caplens = np.concatenate([p[2] for p in parts])
            wirelens = np.concatenate([p[3] for p in parts])
            timestamps = np.concatenate([p[4] for p in parts])

        batch = PacketBatch(
            data=data,
            offsets=offsets,
            caplens=caplens,
            wirelens=wirelens,
            timestamps=timestamps,
            linktype=int(self.linktype),
            first_index=self._stats.packets,
        )
        self._stats.packets += count
        self._stats.bytes += int(caplens.sum())
        self._stats.batches += 1
        return batch

    # -- bookkeeping ---------------------------------------------------------

    def stats(self) -> SourceStats:
        """Counters so far; `dropped` is what the kernel could not fit into the ring."""
        if not self._closed:
            self._collect_kernel_stats()
        return SourceStats(
            packets=self._stats.packets,
            bytes=self._stats.bytes,
            batches=self._stats.batches,
            dropped=self._stats.dropped,
            extra=dict(self._stats.extra),
        )

    def _collect_kernel_stats(self) -> None:
        # Reading PACKET_STATISTICS resets the kernel's counters, so they are accumulated here.
        raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS_V3.size)
        packets, drops, freeze_q = _STATS_V3.unpack(raw)
        self._stats.dropped += drops
        self._stats.extra["kernel_packets"] += packets
        self._stats.extra["kernel_freeze_q"] += freeze_q

    def close(self) -> None:
        """Release the ring and the socket; later `next_batch()` calls return None."""
        if self._closed:
            return
        self._closed = True
        # If the socket is already broken its counters are lost with it.
        with contextlib.suppress(OSError):
            self._collect_kernel_stats()
        self._pending.clear()
        # The numpy views must go before the mapping can be closed.
        del self._ring_words
        del self._ring_halves
        del self._ring_bytes
        self._ring.close()
        self._sock.close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _block_size_for(snaplen: int) -> int:
    # A block must hold at least one full-size packet with its headers, and
    # the kernel allocates blocks in power-of-two pages.
    size = _MIN_BLOCK_SIZE
    while size < snaplen + _TPACKET3_HDRLEN + 64:
        size <<= 1
    return size


def _interface_index(interface: str) -> int:
    if not isinstance(interface, str) or not interface:
        raise SourceUnavailableError("no interface given: name one, e.g. `lo` or `eth0`")
    if not hasattr(socket, "AF_PACKET"):
        raise SourceUnavailableError(
            "live capture needs Linux AF_PACKET sockets; on this platform read a pcap file instead"
        )
    if len(interface.encode("utf-8", "replace")) >= _IFNAMSIZ or "\x00" in interface:
        raise SourceUnavailableError(
            f"{interface!r} is not a valid interface name (at most {_IFNAMSIZ - 1} bytes)"
        )
    try:
        return socket.if_nametoindex(interface)
    except OSError:
        names = ", ".join(sorted(name for _, name in socket.if_nameindex()))
        raise SourceUnavailableError(
            f"no such interface {interface!r}; this host has: {names} (see `ip link`)"
        ) from None


def _open_packet_socket(interface: str) -> socket.socket:
    try:
        # Protocol 0 receives nothing until bind() names ETH_P_ALL, which lets
        # the filter and ring be set up first.
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise SourceUnavailableError(
            f"capturing on {interface} needs root or the CAP_NET_RAW capability: run as root, "
            "or grant it with `setcap cap_net_raw,cap_net_admin+eip <python executable>`"
        ) from None
    except OSError as exc:
        raise SourceUnavailableError(
            f"cannot open an AF_PACKET socket: {exc.strerror}; is the af_packet module loaded?"
        ) from exc


def _require_up(sock: socket.socket, interface: str) -> int:
    """Check the interface is up and return its hardware type (ARPHRD_*)."""
    name = interface.encode()
    try:
        flags_reply = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, _IFREQ_FLAGS.pack(name, 0))
        hwaddr_reply = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, _IFREQ_HWADDR.pack(name, 0))
    except OSError as exc:
        raise SourceUnavailableError(
            f"cannot read the settings of interface {interface}: {exc.strerror}"
        ) from exc
    _, flags = _IFREQ_FLAGS.unpack(flags_reply)
    if not flags & _IFF_UP:
        raise SourceUnavailableError(
            f"interface {interface} is down: bring it up with `ip link set {interface} up`"
        )
    _, hatype = _IFREQ_HWADDR.unpack(hwaddr_reply)
    return int(hatype)


def _ignore_outgoing(sock: socket.socket) -> None:
    # On loopback each packet is seen leaving and again arriving; the kernel
    # can skip the leaving copy (Linux 4.20+). Older kernels deliver both and
    # next_batch() drops the PACKET_OUTGOING copies itself.
    try:
        sock.setsockopt(_SOL_PACKET, _PACKET_IGNORE_OUTGOING, 1)
    except OSError as exc:
        if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL):
            raise


def _enable_promiscuous(sock: socket.socket, interface: str, ifindex: int) -> None:
    # A membership (unlike setting IFF_PROMISC by hand) is dropped by the
    # kernel when the socket closes, even if the process dies.
    mreq = _PACKET_MREQ.pack(ifindex, _PACKET_MR_PROMISC, 0, b"")
    try:
        sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, mreq)
    except OSError as exc:
        raise SourceUnavailableError(
            f"cannot put {interface} into promiscuous mode: {exc.strerror}"
        ) from exc


def _raise_socket_error(sock: socket.socket, interface: str) -> None:
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if not code:
        return
    if code == errno.ENETDOWN:
        raise SourceUnavailableError(
            f"interface {interface} is down: bring it up with `ip link set {interface} up`"
        )
    if code == errno.ENODEV:
        raise SourceUnavailableError(f"interface {interface} has disappeared")
    raise CaptureError(f"capture on {interface} failed: {errno.errorcode.get(code, code)}")


def _linktype_for(interface: str, hatype: int) -> LinkType:
    try:
        return _LINKTYPE_BY_HATYPE[hatype]
    except KeyError:
        raise SourceUnavailableError(
            f"interface {interface} has hardware type {hatype} (see linux/if_arp.h), whose "
            "frames Shrike cannot decode; supported: Ethernet, loopback, tun and raw-IP devices"
        ) from None
