"""Batch decoding of link, network and transport headers into one structured array per batch.

A compiled kernel walks each packet once, through link layers (Ethernet, 802.1Q/QinQ,
MPLS, PPPoE, NSH, Linux cooked, BSD loopback, PPP, Cisco HDLC, FDDI, 802.11 radiotap),
IPv4/IPv6 (options, extension headers, fragments flagged) and TCP/UDP/ICMP/ICMPv6,
and through the tunnels a sensor meets (IP-in-IP, GRE, ERSPAN, VXLAN, Geneve,
Teredo, GTP-U). Each packet gives one row for its innermost flow-bearing layer
and, for UDP tunnels, one row for the outer UDP flow too (Zeek logs both). ARP
packets give ARP rows. A malformed packet gives no row and is counted by reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from dpdk_io.batch import PacketBatch

# Row kinds.
KIND_IP = 1
KIND_ARP = 2

# Row flags.
F_FRAGMENT = 1  # IPv4/IPv6 fragment (first or later)
F_LATER_FRAGMENT = 2  # fragment without a usable transport header (a later one, or cut short)
F_MORE_FRAGMENTS = 4
F_DONT_FRAGMENT = 8
F_IP_OPTIONS = 16  # IPv4 options present
F_IPV6_EXT = 32  # IPv6 extension headers present
F_TUNNELLED = 64  # this row was found inside a tunnel
F_TUNNEL_OUTER = 128  # this row is the outer UDP flow of a tunnel

ROW_DTYPE = np.dtype(
    [
        ("pkt", np.int32),  # index of the packet within its batch
        ("kind", np.uint8),
        ("ipver", np.uint8),
        ("proto", np.uint8),
        ("ttl", np.uint8),
        ("tos", np.uint8),
        ("tcp_flags", np.uint8),
        ("icmp_type", np.uint8),
        ("icmp_code", np.uint8),
        ("flags", np.uint16),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("vlan", np.uint16),
        ("tcp_win", np.uint16),
        ("ip_id", np.uint32),
        ("frag_off", np.uint16),
        ("tunnel_depth", np.uint8),
        ("arp_op", np.uint8),
        ("ip_len", np.int32),  # bytes of this IP datagram as its header states them
        ("l3_off", np.int32),  # offsets relative to the packet start
        ("l4_off", np.int32),
        ("payload_off", np.int32),
        ("payload_len", np.int32),  # transport payload bytes as the headers state them
        ("tcp_seq", np.uint32),
        ("tcp_ack", np.uint32),
        ("icmp_id", np.uint16),
        ("src", np.uint64, (2,)),  # IPv6, or IPv4 mapped as ::ffff:a.b.c.d, big-endian halves
        ("dst", np.uint64, (2,)),
        ("src_mac", np.uint64),
        ("dst_mac", np.uint64),
        ("ts", np.int64),
        ("link_off", np.int32),  # where the innermost layer's packet starts (a tunnel's payload)
    ]
)

# Malformed-packet reasons, by index into the counts array.
MALFORMED_REASONS = (
    "ok",
    "truncated_link_header",
    "unsupported_link_type",
    "truncated_ip_header",
    "bad_ip_version",
    "bad_ip_header_length",
    "bad_ip_total_length",
    "truncated_tcp_header",
    "bad_tcp_header_length",
    "truncated_udp_header",
    "truncated_icmp_header",
    "bad_ipv6_extension_header",
    "too_many_encapsulations",
    "truncated_arp",
    "truncated_tunnel_header",
)
R_OK = 0
R_L2 = 1
R_LINKTYPE = 2
R_IP_TRUNC = 3
R_IP_VER = 4
R_IP_HLEN = 5
R_IP_TLEN = 6
R_TCP_TRUNC = 7
R_TCP_HLEN = 8
R_UDP_TRUNC = 9
R_ICMP_TRUNC = 10
R_IP6_EXT = 11
R_DEPTH = 12
R_ARP = 13
R_TUNNEL = 14
N_REASONS = len(MALFORMED_REASONS)

MAX_DEPTH = 8
ROWS_PER_PACKET = 3

UDP_VXLAN = 4789
UDP_GENEVE = 6081
UDP_TEREDO = 3544
UDP_GTP_U = 2152

_IPV4_MAPPED_HI = np.uint64(0)
_IPV4_MAPPED_LO_PREFIX = np.uint64(0x0000FFFF00000000)


_ROW_RECORD = np.dtype((np.void, ROW_DTYPE.itemsize))


def take_rows(rows: np.ndarray, which: np.ndarray) -> np.ndarray:
    """`rows[which]` (a mask or indices) for rows of ROW_DTYPE, moved as opaque
    records: numpy copies a structured array field by field, over ten times slower."""
    if rows.dtype != ROW_DTYPE or not rows.flags.c_contiguous:
        return rows[which]
    return rows.view(_ROW_RECORD)[which].view(ROW_DTYPE)


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """The decoded rows of one `PacketBatch` plus its malformed counts.

    `rows` is a structured array of ROW_DTYPE; `malformed[i]` counts packets
    skipped for MALFORMED_REASONS[i] (index 0 unused); `other` counts packets
    that carry neither IP nor ARP; `fragments` counts the rows of IP fragments.
    """

    batch: PacketBatch
    rows: np.ndarray
    malformed: np.ndarray
    other: int
    fragments: int = 0  # rows of IPv4/IPv6 fragments (what `engine.defrag` reassembles)

    def malformed_counts(self) -> dict[str, int]:
        return {MALFORMED_REASONS[i]: int(c) for i, c in enumerate(self.malformed) if i and c}


@numba.njit(cache=True, inline="always")
def _be16(b, o):
    return (np.uint32(b[o]) << 8) | np.uint32(b[o + 1])


@numba.njit(cache=True, inline="always")
def _be32(b, o):
    return (
        (np.uint32(b[o]) << 24)
        | (np.uint32(b[o + 1]) << 16)
        | (np.uint32(b[o + 2]) << 8)
        | np.uint32(b[o + 3])
    )


@numba.njit(cache=True, inline="always")
def _be64(b, o):
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(b[o + k])
    return v


@numba.njit(cache=True, inline="always")
def _mac(b, o):
    v = np.uint64(0)
    for k in range(6):
        v = (v << np.uint64(8)) | np.uint64(b[o + k])
    return v


# Next-layer codes used while walking a packet.
_L_ETHER = 1
_L_ETHERTYPE = 2  # `etype` holds an EtherType, `off` the first byte after it
_L_IP = 3  # version nibble decides
_L_PPP = 4  # PPP protocol field at `off`
_L_DONE = 0


@numba.njit(cache=True)
def _link_start(b, start, caplen, linktype):
    """Return (next_layer, offset, ethertype, reason) for the link header of a packet."""
    end = start + caplen
    if linktype == 1:  # Ethernet
        return _L_ETHER, start, 0, R_OK
    if linktype == 101 or linktype == 228 or linktype == 229 or linktype == 12 or linktype == 14:
        return _L_IP, start, 0, R_OK
    if linktype == 0 or linktype == 108:  # BSD / OpenBSD loopback: 4-byte AF value
        if caplen < 4:
            return _L_DONE, start, 0, R_L2
        if linktype == 108:
            af = _be32(b, start)
        else:
            af = (
                np.uint32(b[start])
                | (np.uint32(b[start + 1]) << 8)
                | (np.uint32(b[start + 2]) << 16)
                | (np.uint32(b[start + 3]) << 24)
            )
            if af > 0xFFFF:  # written on a big-endian host
                af = _be32(b, start)
        if af == 2:
            return _L_ETHERTYPE, start + 4, 0x0800, R_OK
        if af == 24 or af == 28 or af == 30 or af == 10:
            return _L_ETHERTYPE, start + 4, 0x86DD, R_OK
        return _L_DONE, start, 0, R_OK  # another address family: not IP
    if linktype == 113:  # Linux cooked v1
        if caplen < 16:
            return _L_DONE, start, 0, R_L2
        return _L_ETHERTYPE, start + 16, _be16(b, start + 14), R_OK
    if linktype == 276:  # Linux cooked v2
        if caplen < 20:
            return _L_DONE, start, 0, R_L2
        return _L_ETHERTYPE, start + 20, _be16(b, start), R_OK
    if linktype == 9 or linktype == 50:  # PPP (optionally HDLC-framed)
        if caplen < 2:
            return _L_DONE, start, 0, R_L2
        if b[start] == 0xFF and b[start + 1] == 0x03:
            return _L_PPP, start + 2, 0, R_OK
        return _L_PPP, start, 0, R_OK
    if linktype == 104:  # Cisco HDLC: address, control, EtherType
        if caplen < 4:
            return _L_DONE, start, 0, R_L2
        return _L_ETHERTYPE, start + 4, _be16(b, start + 2), R_OK
    if linktype == 10:  # FDDI: frame control, two addresses, then LLC/SNAP
        if caplen < 13 + 8:
            return _L_DONE, start, 0, R_L2
        o = start + 13
        if b[o] == 0xAA and b[o + 1] == 0xAA and b[o + 2] == 0x03:
            return _L_ETHERTYPE, o + 8, _be16(b, o + 6), R_OK
        return _L_DONE, start, 0, R_OK
    if linktype == 127 or linktype == 105:  # 802.11, optionally behind radiotap
        o = start
        if linktype == 127:
            if caplen < 8:
                return _L_DONE, start, 0, R_L2
            rt_len = np.uint32(b[start + 2]) | (np.uint32(b[start + 3]) << 8)
            o = start + rt_len
        if end - o < 24:
            return _L_DONE, start, 0, R_L2
        fc0 = b[o]
        fc1 = b[o + 1]
        ftype = (fc0 >> 2) & 3
        subtype = (fc0 >> 4) & 15
        if ftype != 2:  # management and control frames carry no IP
            return _L_DONE, start, 0, R_OK
        if fc1 & 0x40:  # protected frame: encrypted payload
            return _L_DONE, start, 0, R_OK
        hdr = 24
        if (fc1 & 3) == 3:
            hdr += 6  # fourth address
        if subtype & 8:
            hdr += 2  # QoS control
            if fc1 & 0x80:
                hdr += 4  # HT control
        if subtype & 4:  # null-data frames
            return _L_DONE, start, 0, R_OK
        o += hdr
        if end - o < 8:
            return _L_DONE, start, 0, R_L2
        if b[o] == 0xAA and b[o + 1] == 0xAA and b[o + 2] == 0x03:
            return _L_ETHERTYPE, o + 8, _be16(b, o + 6), R_OK
        return _L_DONE, start, 0, R_OK
    return _L_DONE, start, 0, R_LINKTYPE


@numba.njit(cache=True)
def _decode_kernel(buf, offsets, caplens, timestamps, linktype, rows, malformed):
    """Decode every packet; return (rows written, non-IP packets, fragment rows)."""
    n_rows = 0
    other = 0
    fragments = 0
    for p in range(offsets.shape[0]):
        start = offsets[p]
        caplen = caplens[p]
        end = start + caplen
        ts = timestamps[p]
        layer, off, etype, reason = _link_start(buf, start, caplen, linktype)
        vlan = 0
        depth = 0
        tunnelled = False
        inner = start  # where the innermost layer's packet begins (a tunnel's payload)
        src_mac = np.uint64(0)
        dst_mac = np.uint64(0)
        rows_before = n_rows
        while reason == R_OK and layer != _L_DONE:
            depth += 1
            if depth > MAX_DEPTH:
                reason = R_DEPTH
                break
            if layer == _L_ETHER:
                if end - off < 14:
                    reason = R_L2
                    break
                if depth == 1:
                    dst_mac = _mac(buf, off)
                    src_mac = _mac(buf, off + 6)
                etype = _be16(buf, off + 12)
                off += 14
                if etype <= 1500:  # 802.3 length field: LLC follows
                    if end - off >= 8 and buf[off] == 0xAA and buf[off + 1] == 0xAA:
                        etype = _be16(buf, off + 6)
                        off += 8
                    else:
                        layer = _L_DONE
                        continue
                layer = _L_ETHERTYPE
                continue
            if layer == _L_PPP:
                if end - off < 1:
                    reason = R_L2
                    break
                proto = np.uint32(buf[off])
                if proto & 1:  # compressed one-byte protocol field
                    off += 1
                else:
                    if end - off < 2:
                        reason = R_L2
                        break
                    proto = _be16(buf, off)
                    off += 2
                if proto == 0x21:
                    etype = 0x0800
                elif proto == 0x57:
                    etype = 0x86DD
                else:
                    layer = _L_DONE
                    continue
                layer = _L_ETHERTYPE
                continue
            if layer == _L_ETHERTYPE:
                if etype == 0x8100 or etype == 0x88A8 or etype == 0x9100:
                    if end - off < 4:
                        reason = R_L2
                        break
                    if vlan == 0:
                        vlan = _be16(buf, off) & 0x0FFF
                    etype = _be16(buf, off + 2)
                    off += 4
                    continue
                if etype == 0x8847 or etype == 0x8848:  # MPLS: pop to bottom of stack
                    bottom = False
                    while not bottom:
                        if end - off < 4:
                            reason = R_L2
                            break
                        bottom = (buf[off + 2] & 1) == 1
                        off += 4
                    if reason != R_OK:
                        break
                    if end - off < 1:
                        reason = R_L2
                        break
                    v = buf[off] >> 4
                    if v == 4 or v == 6:
                        layer = _L_IP
                    else:
                        layer = _L_ETHER  # pseudowire carrying Ethernet
                    continue
                if etype == 0x8864:  # PPPoE session
                    if end - off < 6:
                        reason = R_L2
                        break
                    off += 6
                    layer = _L_PPP
                    continue
                if etype == 0x8903:  # Cisco FabricPath: tag, then the original frame
                    if end - off < 2:
                        reason = R_L2
                        break
                    off += 2
                    layer = _L_ETHER
                    continue
                if etype == 0x0800 or etype == 0x86DD:
                    layer = _L_IP
                    continue
                if etype == 0x894F:  # NSH: base and service path headers, then metadata
                    if end - off < 8:
                        reason = R_TUNNEL
                        break
                    nsh_len = (buf[off + 1] & 0x3F) * 4
                    nsh_next = buf[off + 3]
                    if nsh_len < 8 or end - off < nsh_len:
                        reason = R_TUNNEL
                        break
                    off += nsh_len
                    if nsh_next == 1:
                        etype = 0x0800
                    elif nsh_next == 2:
                        etype = 0x86DD
                    elif nsh_next == 3:
                        layer = _L_ETHER
                        continue
                    elif nsh_next == 4:
                        etype = 0x894F
                    elif nsh_next == 5:
                        etype = 0x8847
                    else:
                        layer = _L_DONE
                    continue
                if etype == 0x0806:
                    if end - off < 28:
                        reason = R_ARP
                        break
                    if _be16(buf, off) == 1 and _be16(buf, off + 2) == 0x0800:
                        r = n_rows
                        rows[r]["pkt"] = p
                        rows[r]["ts"] = ts
                        rows[r]["kind"] = KIND_ARP
                        rows[r]["arp_op"] = _be16(buf, off + 6)
                        rows[r]["src_mac"] = _mac(buf, off + 8)
                        rows[r]["src"][0] = _IPV4_MAPPED_HI
                        rows[r]["src"][1] = _IPV4_MAPPED_LO_PREFIX | np.uint64(_be32(buf, off + 14))
                        rows[r]["dst_mac"] = _mac(buf, off + 18)
                        rows[r]["dst"][0] = _IPV4_MAPPED_HI
                        rows[r]["dst"][1] = _IPV4_MAPPED_LO_PREFIX | np.uint64(_be32(buf, off + 24))
                        rows[r]["vlan"] = vlan
                        n_rows += 1
                    layer = _L_DONE
                    continue
                layer = _L_DONE
                continue
            # layer == _L_IP
            if end - off < 1:
                reason = R_IP_TRUNC
                break
            ver = buf[off] >> 4
            r = n_rows
            if ver == 4:
                if end - off < 20:
                    reason = R_IP_TRUNC
                    break
                ihl = (buf[off] & 15) * 4
                if ihl < 20:
                    reason = R_IP_HLEN
                    break
                if end - off < ihl:
                    reason = R_IP_TRUNC
                    break
                tlen = _be16(buf, off + 2)
                if tlen < ihl:
                    # TSO-captured packets carry 0 here; trust the capture length then
                    if tlen == 0:
                        tlen = end - off
                    else:
                        reason = R_IP_TLEN
                        break
                fragw = _be16(buf, off + 6)
                frag_off = (fragw & 0x1FFF) * 8
                fl = 0
                if fragw & 0x2000:
                    fl |= F_MORE_FRAGMENTS
                if fragw & 0x4000:
                    fl |= F_DONT_FRAGMENT
                if frag_off or (fragw & 0x2000):
                    fl |= F_FRAGMENT
                if frag_off:
                    fl |= F_LATER_FRAGMENT
                if ihl > 20:
                    fl |= F_IP_OPTIONS
                rows[r]["ipver"] = 4
                rows[r]["tos"] = buf[off + 1]
                rows[r]["ip_id"] = _be16(buf, off + 4)
                rows[r]["frag_off"] = frag_off
                rows[r]["ttl"] = buf[off + 8]
                proto = buf[off + 9]
                rows[r]["src"][0] = _IPV4_MAPPED_HI
                rows[r]["src"][1] = _IPV4_MAPPED_LO_PREFIX | np.uint64(_be32(buf, off + 12))
                rows[r]["dst"][0] = _IPV4_MAPPED_HI
                rows[r]["dst"][1] = _IPV4_MAPPED_LO_PREFIX | np.uint64(_be32(buf, off + 16))
                l4 = off + ihl
                ip_end = off + tlen
            elif ver == 6:
                if end - off < 40:
                    reason = R_IP_TRUNC
                    break
                plen = _be16(buf, off + 4)
                tlen = 40 + plen
                rows[r]["ipver"] = 6
                rows[r]["tos"] = ((buf[off] & 15) << 4) | (buf[off + 1] >> 4)
                rows[r]["ttl"] = buf[off + 7]
                rows[r]["ip_id"] = 0
                rows[r]["frag_off"] = 0
                rows[r]["src"][0] = _be64(buf, off + 8)
                rows[r]["src"][1] = _be64(buf, off + 16)
                rows[r]["dst"][0] = _be64(buf, off + 24)
                rows[r]["dst"][1] = _be64(buf, off + 32)
                proto = buf[off + 6]
                l4 = off + 40
                ip_end = off + tlen
                fl = 0
                # walk extension headers to the transport header
                while True:
                    if proto == 0 or proto == 43 or proto == 60 or proto == 51 or proto == 135:
                        if end - l4 < 8:
                            reason = R_IP6_EXT
                            break
                        nxt = buf[l4]
                        if proto == 51:
                            hl = (buf[l4 + 1] + 2) * 4
                        else:
                            hl = (buf[l4 + 1] + 1) * 8
                        fl |= F_IPV6_EXT
                        proto = nxt
                        l4 += hl
                        continue
                    if proto == 44:
                        if end - l4 < 8:
                            reason = R_IP6_EXT
                            break
                        fl |= F_IPV6_EXT | F_FRAGMENT
                        fo = _be16(buf, l4 + 2)
                        if fo & 1:
                            fl |= F_MORE_FRAGMENTS
                        if fo & 0xFFF8:
                            fl |= F_LATER_FRAGMENT
                        rows[r]["frag_off"] = fo & 0xFFF8
                        rows[r]["ip_id"] = _be32(buf, l4 + 4)
                        proto = buf[l4]
                        l4 += 8
                        continue
                    break
                if reason != R_OK:
                    break
                if l4 > ip_end and plen != 0:
                    reason = R_IP6_EXT
                    break
            else:
                reason = R_IP_VER
                break
            if ip_end > end:
                ip_end = end  # snapped capture: the header's length still counts
            rows[r]["pkt"] = p
            rows[r]["ts"] = ts
            rows[r]["kind"] = KIND_IP
            rows[r]["proto"] = proto
            rows[r]["ip_len"] = tlen
            rows[r]["l3_off"] = off - start
            rows[r]["l4_off"] = l4 - start
            rows[r]["vlan"] = vlan
            rows[r]["src_mac"] = src_mac
            rows[r]["dst_mac"] = dst_mac
            rows[r]["tunnel_depth"] = 1 if tunnelled else 0
            rows[r]["link_off"] = inner - start
            rows[r]["sport"] = 0
            rows[r]["dport"] = 0
            rows[r]["tcp_flags"] = 0
            rows[r]["tcp_seq"] = 0
            rows[r]["tcp_ack"] = 0
            rows[r]["tcp_win"] = 0
            rows[r]["icmp_type"] = 0
            rows[r]["icmp_code"] = 0
            rows[r]["icmp_id"] = 0
            rows[r]["arp_op"] = 0
            if tunnelled:
                fl |= F_TUNNELLED
            rows[r]["flags"] = fl
            rows[r]["payload_off"] = l4 - start
            rows[r]["payload_len"] = 0
            layer = _L_DONE
            if fl & F_FRAGMENT:
                fragments += 1
            if fl & F_LATER_FRAGMENT:
                n_rows += 1
                continue
            cap_end = end
            if proto == 6:
                if cap_end - l4 < 20:
                    if fl & F_FRAGMENT:
                        # the transport header continues in a later fragment
                        rows[r]["flags"] = fl | F_LATER_FRAGMENT
                        n_rows += 1
                        continue
                    reason = R_TCP_TRUNC
                    break
                thl = (buf[l4 + 12] >> 4) * 4
                if thl < 20:
                    reason = R_TCP_HLEN
                    break
                rows[r]["sport"] = _be16(buf, l4)
                rows[r]["dport"] = _be16(buf, l4 + 2)
                rows[r]["tcp_seq"] = _be32(buf, l4 + 4)
                rows[r]["tcp_ack"] = _be32(buf, l4 + 8)
                rows[r]["tcp_flags"] = buf[l4 + 13]
                rows[r]["tcp_win"] = _be16(buf, l4 + 14)
                pl = (off + tlen) - (l4 + thl)
                rows[r]["payload_off"] = l4 + thl - start
                rows[r]["payload_len"] = pl if pl > 0 else 0
                n_rows += 1
                continue
            if proto == 17:
                if cap_end - l4 < 8:
                    if fl & F_FRAGMENT:
                        # the transport header continues in a later fragment
                        rows[r]["flags"] = fl | F_LATER_FRAGMENT
                        n_rows += 1
                        continue
                    reason = R_UDP_TRUNC
                    break
                sp = _be16(buf, l4)
                dp = _be16(buf, l4 + 2)
                ulen = _be16(buf, l4 + 4)
                rows[r]["sport"] = sp
                rows[r]["dport"] = dp
                pl = (off + tlen) - (l4 + 8)
                if ulen >= 8 and ulen - 8 < pl:
                    pl = ulen - 8
                rows[r]["payload_off"] = l4 + 8 - start
                rows[r]["payload_len"] = pl if pl > 0 else 0
                n_rows += 1
                # UDP tunnels: keep this row as the outer flow and decode the inner packet
                # (a fragment's inner packet is decoded once the datagram is reassembled)
                if n_rows - rows_before >= ROWS_PER_PACKET or fl & F_FRAGMENT:
                    continue
                po = l4 + 8
                if dp == UDP_VXLAN or sp == UDP_VXLAN:
                    if ip_end - po >= 8 + 14 and (buf[po] & 0x08):
                        rows[r]["flags"] = fl | F_TUNNEL_OUTER
                        off = po + 8
                        layer = _L_ETHER
                        tunnelled = True
                        inner = off
                    continue
                if dp == UDP_GENEVE or sp == UDP_GENEVE:
                    if ip_end - po >= 8:
                        optlen = (buf[po] & 0x3F) * 4
                        gproto = _be16(buf, po + 2)
                        if ip_end - po >= 8 + optlen + 14:
                            rows[r]["flags"] = fl | F_TUNNEL_OUTER
                            off = po + 8 + optlen
                            tunnelled = True
                            inner = off
                            if gproto == 0x6558:
                                layer = _L_ETHER
                            else:
                                etype = gproto
                                layer = _L_ETHERTYPE
                    continue
                if dp == UDP_GTP_U or sp == UDP_GTP_U:
                    if ip_end - po >= 8 and (buf[po] >> 5) == 1 and buf[po + 1] == 0xFF:
                        gl = 8
                        gflags = buf[po]
                        if gflags & 0x07:
                            gl = 12
                            nxt_ext = buf[po + 11]
                            while nxt_ext != 0 and ip_end - (po + gl) >= 4:
                                el = buf[po + gl] * 4
                                if el == 0:
                                    break
                                nxt_ext = buf[po + gl + el - 1]
                                gl += el
                        if ip_end - (po + gl) >= 20:
                            v = buf[po + gl] >> 4
                            if v == 4 or v == 6:
                                rows[r]["flags"] = fl | F_TUNNEL_OUTER
                                off = po + gl
                                layer = _L_IP
                                tunnelled = True
                                inner = off
                    continue
                # Teredo: on its port, or on any port when the datagram is exactly one
                # IPv6 packet to or from the Teredo prefix (relays use other ports)
                q = po
                on_port = dp == UDP_TEREDO or sp == UDP_TEREDO
                if on_port:
                    # optional authentication and origin-indication headers
                    if ip_end - q >= 4 and buf[q] == 0 and buf[q + 1] == 1:
                        q += 4 + buf[q + 2] + buf[q + 3] + 8 + 1
                    if ip_end - q >= 8 and buf[q] == 0 and buf[q + 1] == 0:
                        q += 8
                if ip_end - q >= 40 and (buf[q] >> 4) == 6 and q + 40 <= end:
                    v6_len = 40 + _be16(buf, q + 4)
                    fits = v6_len <= ip_end - q if on_port else v6_len == (po + pl) - q
                    teredo_addr = (
                        _be32(buf, q + 8) == 0x20010000 or _be32(buf, q + 24) == 0x20010000
                    )
                    if fits and (on_port or teredo_addr):
                        rows[r]["flags"] = fl | F_TUNNEL_OUTER
                        off = q
                        layer = _L_IP
                        tunnelled = True
                        inner = off
                continue
            if proto == 1 or proto == 58:
                if cap_end - l4 < 4:
                    if fl & F_FRAGMENT:
                        # the transport header continues in a later fragment
                        rows[r]["flags"] = fl | F_LATER_FRAGMENT
                        n_rows += 1
                        continue
                    reason = R_ICMP_TRUNC
                    break
                it = buf[l4]
                rows[r]["icmp_type"] = it
                rows[r]["icmp_code"] = buf[l4 + 1]
                if cap_end - l4 >= 8:
                    rows[r]["icmp_id"] = _be16(buf, l4 + 4)
                hdr = 8 if cap_end - l4 >= 8 else 4
                rows[r]["payload_off"] = l4 + hdr - start
                pl = (off + tlen) - (l4 + hdr)
                rows[r]["payload_len"] = pl if pl > 0 else 0
                n_rows += 1
                continue
            if fl & F_FRAGMENT:  # a tunnel's payload is decoded once the datagram is reassembled
                n_rows += 1
                continue
            if proto == 4 or proto == 41:  # IP-in-IP: the outer datagram is not a flow
                off = l4
                layer = _L_IP
                tunnelled = True
                inner = off
                continue
            if proto == 47:  # GRE
                if end - l4 < 4:
                    reason = R_TUNNEL
                    break
                gf = _be16(buf, l4)
                gproto = _be16(buf, l4 + 2)
                ver = gf & 7
                gl = 4
                if gf & 0x8000:
                    gl += 4  # checksum + reserved
                if gf & 0x2000:
                    gl += 4  # key
                if gf & 0x1000:
                    gl += 4  # sequence
                if ver == 1 and (gf & 0x0080):
                    gl += 4  # PPTP acknowledgment
                if end - l4 < gl:
                    reason = R_TUNNEL
                    break
                q = l4 + gl
                if gproto == 0x88BE:  # ERSPAN: type II has a sequence number and 8-byte header
                    if gf & 0x1000:
                        if end - q < 8:
                            reason = R_TUNNEL
                            break
                        if vlan == 0:  # the mirrored frame's VLAN
                            vlan = _be16(buf, q) & 0x0FFF
                        q += 8
                    gproto = 0x6558
                elif gproto == 0x22EB:  # ERSPAN type III
                    q += 12
                    gproto = 0x6558
                if gproto == 0x6558:
                    off = q
                    layer = _L_ETHER
                    tunnelled = True
                    inner = off
                    continue
                if gproto == 0x880B:  # PPTP carries PPP
                    if end - q >= 2 and buf[q] == 0xFF and buf[q + 1] == 0x03:
                        q += 2
                    off = q
                    layer = _L_PPP
                    tunnelled = True
                    inner = off
                    continue
                off = q
                etype = gproto
                layer = _L_ETHERTYPE
                tunnelled = True
                inner = off
                # the GRE datagram itself is not logged as a connection
                continue
            # any other transport: the IP row stands alone
            n_rows += 1
            continue
        if reason != R_OK:
            malformed[reason] += 1
            n_rows = rows_before  # a malformed packet contributes nothing
        elif n_rows == rows_before:
            other += 1
    return n_rows, other, fragments


def decode(batch: PacketBatch) -> DecodedBatch:
    """Decode one batch; malformed packets are counted and skipped, never raised."""
    n = len(batch)
    rows = np.zeros(n * ROWS_PER_PACKET, dtype=ROW_DTYPE)
    malformed = np.zeros(N_REASONS, dtype=np.int64)
    if n:
        n_rows, other, fragments = _decode_kernel(
            batch.data,
            batch.offsets,
            batch.caplens,
            batch.timestamps,
            batch.linktype,
            rows,
            malformed,
        )
    else:
        n_rows, other, fragments = 0, 0, 0
    return DecodedBatch(
        batch=batch,
        rows=rows[:n_rows],
        malformed=malformed,
        other=int(other),
        fragments=int(fragments),
    )
