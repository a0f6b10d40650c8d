"""PcapSource: pcap (µs/ns, both byte orders) and pcapng reading, damage reporting."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapReader, wrpcap

from dpdk_io.errors import CaptureError, CaptureFormatError
from dpdk_io.pcap import PcapSource, read_all

# --------------------------------------------------------------------------- helpers


def eth() -> Ether:
    """An Ethernet header with explicit addresses (scapy must never resolve them)."""
    return Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")


def _pkt(i: int, size: int = 0) -> bytes:
    p = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst=f"10.0.1.{i % 250 + 1}")
        / UDP(sport=1024 + i, dport=53)
        / bytes((i + k) % 256 for k in range(size or (i * 7) % 90))
    )
    return bytes(p)


def write_pcap(
    path: Path,
    records: list[tuple[int, int, bytes]],
    *,
    ns: bool = False,
    big_endian: bool = False,
    linktype: int = 1,
    snaplen: int = 65535,
    orig_lens: list[int] | None = None,
) -> list[int]:
    """Write a classic pcap of (sec, frac, data); return each record header's byte offset."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    offsets = []
    for k, (sec, frac, data) in enumerate(records):
        offsets.append(len(out))
        orig = orig_lens[k] if orig_lens else len(data)
        out += struct.pack(e + "IIII", sec, frac, len(data), orig) + data
    path.write_bytes(bytes(out))
    return offsets


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def _block(btype: int, body: bytes, e: str = "<") -> bytes:
    body = _pad4(body)
    blen = 12 + len(body)
    return struct.pack(e + "II", btype, blen) + body + struct.pack(e + "I", blen)


def shb(e: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def idb(linktype: int, tsresol: int | None = None, e: str = "<") -> bytes:
    body = struct.pack(e + "HHI", linktype, 0, 0)
    if tsresol is not None:
        body += struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\x00\x00\x00"
        body += struct.pack(e + "HH", 0, 0)
    return _block(1, body, e)


def epb(iface: int, ticks: int, data: bytes, e: str = "<", orig: int | None = None) -> bytes:
    body = struct.pack(
        e + "IIIII",
        iface,
        ticks >> 32,
        ticks & 0xFFFFFFFF,
        len(data),
        len(data) if orig is None else orig,
    )
    return _block(6, body + data, e)


def spb(data: bytes, e: str = "<") -> bytes:
    return _block(3, struct.pack(e + "I", len(data)) + data, e)


def read_packets(path: Path, **kw) -> tuple[list[bytes], list[int], list[int], list[int]]:
    """(packets, timestamps, linktypes, wirelens) of the whole capture."""
    pkts, ts, lts, wl = [], [], [], []
    with PcapSource(path, **kw) as src:
        for b in src:
            for i in range(len(b)):
                pkts.append(b.packet(i))
                ts.append(int(b.timestamps[i]))
                lts.append(b.linktype)
                wl.append(int(b.wirelens[i]))
    return pkts, ts, lts, wl


# --------------------------------------------------------------------------- classic pcap


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_microsecond_timestamps_exact(tmp_path: Path, big_endian: bool) -> None:
    recs = [
        (1_700_000_000, 0, _pkt(0)),
        (1_700_000_000, 999_999, _pkt(1)),
        (1_700_000_001, 1, _pkt(2)),
        (4_000_000_000, 123_456, _pkt(3)),  # past 2038: the seconds field is unsigned
    ]
    path = tmp_path / "us.pcap"
    write_pcap(path, recs, big_endian=big_endian)
    pkts, ts, lts, _ = read_packets(path)
    assert pkts == [r[2] for r in recs]
    assert ts == [s * 1_000_000_000 + f * 1000 for s, f, _ in recs]
    assert set(lts) == {1}


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_nanosecond_timestamps_exact(tmp_path: Path, big_endian: bool) -> None:
    recs = [
        (1_700_000_000, 1, _pkt(0)),
        (1_700_000_000, 999_999_999, _pkt(1)),
        (1_700_000_002, 500_000_123, _pkt(2)),
    ]
    path = tmp_path / "ns.pcap"
    write_pcap(path, recs, ns=True, big_endian=big_endian)
    pkts, ts, _, _ = read_packets(path)
    assert pkts == [r[2] for r in recs]
    assert ts == [s * 1_000_000_000 + f for s, f, _ in recs]


def test_big_endian_linktype_and_wirelen(tmp_path: Path) -> None:
    data = [_pkt(i, 40) for i in range(3)]
    path = tmp_path / "be.pcap"
    write_pcap(
        path,
        [(10, i, d) for i, d in enumerate(data)],
        big_endian=True,
        linktype=101,
        orig_lens=[len(d) + 100 for d in data],
    )
    pkts, _, lts, wl = read_packets(path)
    assert pkts == data
    assert lts == [101, 101, 101]
    assert wl == [len(d) + 100 for d in data]


def test_matches_scapy_raw_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    pkts = []
    for i in range(300):
        p = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src=f"10.{i % 7}.0.1", dst="192.0.2.9")
            / TCP(sport=int(rng.integers(1024, 65535)), dport=443, flags="PA")
            / bytes(rng.integers(0, 256, int(rng.integers(0, 1400)), dtype=np.uint8))
        )
        p.time = 1_600_000_000 + i * 0.013
        pkts.append(p)
    path = tmp_path / "gen.pcap"
    wrpcap(str(path), pkts)
    expected = [(bytes(d), md.sec * 1_000_000 + md.usec) for d, md in RawPcapReader(str(path))]
    # a small batch size forces many batches: indexes must continue across them
    firsts = []
    got = []
    with PcapSource(path, batch_size=64) as src:
        for b in src:
            firsts.append(b.first_index)
            got.extend((b.packet(i), int(b.timestamps[i]) // 1000) for i in range(len(b)))
        st = src.stats()
    assert got == expected
    assert firsts == list(range(0, 300, 64))
    assert st.packets == 300
    assert st.bytes == sum(len(d) for d, _ in expected)
    assert st.batches == len(firsts)


# --------------------------------------------------------------------------- pcapng


def test_pcapng_two_interfaces_split_by_linktype(tmp_path: Path) -> None:
    eth = [_pkt(i) for i in range(4)]
    raw = [bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=i, dport=9)) for i in range(4)]
    blob = shb() + idb(1) + idb(101, tsresol=9)  # if 0: default µs, if 1: ns
    order = []  # (iface, ticks, data)
    order += [(0, 1_700_000_000_000_001, eth[0]), (0, 1_700_000_000_000_002, eth[1])]
    order += [(1, 1_700_000_000_000_000_007, raw[0])]
    order += [(0, 1_700_000_000_500_000, eth[2])]
    order += [(1, 1_700_000_001_000_000_009, raw[1]), (1, 1_700_000_001_000_000_010, raw[2])]
    order += [(0, 1_700_000_002_000_000, eth[3]), (1, 1_700_000_003_000_000_000, raw[3])]
    for iface, ticks, data in order:
        blob += epb(iface, ticks, data)
    path = tmp_path / "two.pcapng"
    path.write_bytes(blob)

    batches = read_all(path)
    for b in batches:
        assert len(b) > 0
    # every batch is one link type; a change of link type starts a new batch
    seq = [(b.linktype, b.packet(i), int(b.timestamps[i])) for b in batches for i in range(len(b))]
    expect_lt = [1 if iface == 0 else 101 for iface, _, _ in order]
    assert [s[0] for s in seq] == expect_lt
    assert [s[1] for s in seq] == [d for _, _, d in order]
    assert [s[2] for s in seq] == [t * 1000 if iface == 0 else t for iface, t, _ in order]
    runs = 1 + sum(1 for a, b in itertools.pairwise(expect_lt) if a != b)
    assert len(batches) == runs
    # capture-wide packet indexes stay continuous across the split
    idx = 0
    for b in batches:
        assert b.first_index == idx
        idx += len(b)


@pytest.mark.parametrize(
    ("tsresol", "ticks", "expected_ns"),
    [
        (3, 1_234_567, 1_234_567_000_000),  # milliseconds
        (6, 1_234_567, 1_234_567_000),  # microseconds, explicit
        (9, 1_234_567, 1_234_567),
        (0x80 | 10, 5 * 1024 + 512, 5_500_000_000),  # 2^-10 s units
    ],
)
def test_pcapng_if_tsresol(tmp_path: Path, tsresol: int, ticks: int, expected_ns: int) -> None:
    path = tmp_path / "res.pcapng"
    path.write_bytes(shb() + idb(1, tsresol=tsresol) + epb(0, ticks, _pkt(1)))
    (b,) = read_all(path)
    assert int(b.timestamps[0]) == expected_ns


def test_pcapng_big_endian_section_and_other_blocks(tmp_path: Path) -> None:
    e = ">"
    data = [_pkt(i) for i in range(3)]
    # a name-resolution block (type 4) and a custom block between packets are skipped
    blob = shb(e) + idb(1, e=e) + epb(0, 10, data[0], e) + _block(4, b"\x00" * 4, e)
    blob += epb(0, 20, data[1], e) + _block(0x00000BAD, b"junk" * 3, e) + epb(0, 30, data[2], e)
    path = tmp_path / "be.pcapng"
    path.write_bytes(blob)
    pkts, ts, lts, _ = read_packets(path)
    assert pkts == data
    assert ts == [10_000, 20_000, 30_000]
    assert set(lts) == {1}


def test_pcapng_simple_packet_block(tmp_path: Path) -> None:
    data = [_pkt(i) for i in range(2)]
    path = tmp_path / "spb.pcapng"
    path.write_bytes(shb() + idb(1) + spb(data[0]) + spb(data[1]))
    pkts, _, _, wl = read_packets(path)
    assert pkts == data
    assert wl == [len(d) for d in data]


def test_pcapng_second_section_renumbers_interfaces(tmp_path: Path) -> None:
    a, b = _pkt(1), bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP())
    blob = shb() + idb(1) + epb(0, 1, a) + shb() + idb(101) + epb(0, 2, b)
    path = tmp_path / "sections.pcapng"
    path.write_bytes(blob)
    pkts, _, lts, _ = read_packets(path)
    assert pkts == [a, b]
    assert lts == [1, 101]


def test_pcapng_packet_on_undescribed_interface(tmp_path: Path) -> None:
    good = shb() + idb(1) + epb(0, 1, _pkt(0))
    path = tmp_path / "noif.pcapng"
    path.write_bytes(good + epb(3, 2, _pkt(1)))
    with PcapSource(path) as src:
        b = src.next_batch()
        assert b is not None and len(b) == 1
        with pytest.raises(CaptureFormatError) as ei:
            src.next_batch()
    assert ei.value.packet_index == 1
    assert ei.value.byte_offset == len(good)


def test_pcapng_truncated_block(tmp_path: Path) -> None:
    head = shb() + idb(1)
    pk = [epb(0, i, _pkt(i, 60)) for i in range(4)]
    blob = head + b"".join(pk)
    cut_at = len(head) + len(pk[0]) + len(pk[1]) + len(pk[2]) // 2
    path = tmp_path / "cut.pcapng"
    path.write_bytes(blob[:cut_at])
    got = []
    with PcapSource(path) as src, pytest.raises(CaptureFormatError) as ei:
        for b in src:
            got.extend(b.packet(i) for i in range(len(b)))
    assert got == [_pkt(0, 60), _pkt(1, 60)]
    assert ei.value.packet_index == 2
    assert ei.value.byte_offset == len(head) + len(pk[0]) + len(pk[1])


# --------------------------------------------------------------------------- damage


def _consume(path: Path, batch_size: int = 65536) -> tuple[list[bytes], CaptureFormatError | None]:
    got: list[bytes] = []
    with PcapSource(path, batch_size=batch_size) as src:
        try:
            for b in src:
                got.extend(b.packet(i) for i in range(len(b)))
        except CaptureFormatError as exc:
            return got, exc
    return got, None


@pytest.mark.parametrize("batch_size", [1, 3, 65536])
@pytest.mark.parametrize("where", ["data", "header"])
def test_truncated_pcap_yields_good_packets_then_error(
    tmp_path: Path, where: str, batch_size: int
) -> None:
    data = [_pkt(i, 50) for i in range(8)]
    n = 5
    full = tmp_path / "full.pcap"
    offs = write_pcap(full, [(1, i, d) for i, d in enumerate(data)])
    blob = full.read_bytes()
    cut = offs[n] + 16 + len(data[n]) // 2 if where == "data" else offs[n] + 7
    path = tmp_path / "cut.pcap"
    path.write_bytes(blob[:cut])
    got, err = _consume(path, batch_size)
    assert got == data[:n]
    assert err is not None
    assert err.packet_index == n
    assert err.byte_offset == offs[n]
    assert str(offs[n]) in str(err) and str(path) in str(err)
    expected_word = "data" if where == "data" else "header"
    assert expected_word in err.reason


def test_error_is_raised_once_then_source_is_done(tmp_path: Path) -> None:
    full = tmp_path / "full.pcap"
    offs = write_pcap(full, [(1, 0, _pkt(0)), (1, 1, _pkt(1))])
    path = tmp_path / "cut.pcap"
    path.write_bytes(full.read_bytes()[: offs[1] + 3])
    src = PcapSource(path)
    assert len(src.next_batch()) == 1
    with pytest.raises(CaptureFormatError):
        src.next_batch()
    assert src.next_batch() is None
    src.close()


def test_damage_at_first_record(tmp_path: Path) -> None:
    full = tmp_path / "full.pcap"
    write_pcap(full, [(1, 0, _pkt(0))])
    path = tmp_path / "cut.pcap"
    path.write_bytes(full.read_bytes()[:30])
    got, err = _consume(path)
    assert got == []
    assert err is not None and err.packet_index == 0 and err.byte_offset == 24


def test_impossible_record_length(tmp_path: Path) -> None:
    data = [_pkt(i) for i in range(4)]
    path = tmp_path / "bad.pcap"
    offs = write_pcap(path, [(1, i, d) for i, d in enumerate(data)])
    blob = bytearray(path.read_bytes())
    struct.pack_into("<I", blob, offs[2] + 8, 0x7FFFFFF0)  # incl_len of packet 2
    path.write_bytes(bytes(blob))
    got, err = _consume(path)
    assert got == data[:2]
    assert err is not None
    assert err.packet_index == 2
    assert err.byte_offset == offs[2]
    assert "impossible" in err.reason


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(b"\xde\xad\xbe\xef" + b"\x00" * 40)
    with pytest.raises(CaptureFormatError) as ei:
        PcapSource(path)
    assert ei.value.byte_offset == 0
    assert ei.value.packet_index == 0
    assert "magic" in str(ei.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    with pytest.raises(CaptureFormatError) as ei:
        PcapSource(path)
    assert ei.value.byte_offset == 0


def test_header_only_pcap_has_no_packets(tmp_path: Path) -> None:
    path = tmp_path / "hdr.pcap"
    write_pcap(path, [])
    assert read_all(path) == []


def test_short_global_header(tmp_path: Path) -> None:
    path = tmp_path / "short.pcap"
    path.write_bytes(struct.pack("<I", 0xA1B2C3D4) + b"\x00" * 8)
    with pytest.raises(CaptureFormatError):
        PcapSource(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as ei:
        PcapSource(tmp_path / "nope.pcap")
    assert not isinstance(ei.value, CaptureFormatError)
    assert "nope.pcap" in str(ei.value)


def test_pcapng_simple_packet_block_too_short(tmp_path: Path) -> None:
    head = shb() + idb(1) + epb(0, 1, _pkt(1))
    bad = struct.pack("<III", 3, 12, 12)  # SPB of 12 bytes: no room for its length field
    path = tmp_path / "short_spb.pcapng"
    path.write_bytes(head + bad + epb(0, 2, _pkt(2)))
    got, err = _consume(path)
    assert got == [_pkt(1)]
    assert err is not None
    assert err.packet_index == 1 and err.byte_offset == len(head)
