"""Capturing real traffic on `lo` (and on a throwaway tun device) with `LiveSource`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from dpdk_io.batch import LinkType, PacketBatch, Source
from dpdk_io.bpf import BpfFilterError
from dpdk_io.errors import SourceUnavailableError
from dpdk_io.live import LiveSource


def _packet_sockets_usable() -> str | None:
    if not hasattr(socket, "AF_PACKET"):
        return "AF_PACKET sockets exist only on Linux"
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        return "live capture needs root or CAP_NET_RAW"
    except OSError as exc:
        return f"AF_PACKET sockets are unavailable here: {exc}"
    return None


_skip_reason = _packet_sockets_usable()
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(_skip_reason is not None, reason=_skip_reason or ""),
]

ETH_IPV4_UDP_HEADERS = 14 + 20 + 8
WAIT_SECONDS = 5.0


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A bound UDP socket on 127.0.0.1: its port is free and datagrams to it are consumed quietly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def other_receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def send_udp(port: int, payloads: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for payload in payloads:
            tx.sendto(payload, ("127.0.0.1", port))


def collect(source: LiveSource, count: int) -> list[PacketBatch]:
    """Non-empty batches until `count` packets arrived or the wait ran out."""
    batches: list[PacketBatch] = []
    seen = 0
    deadline = time.monotonic() + WAIT_SECONDS
    while seen < count and time.monotonic() < deadline:
        batch = source.next_batch()
        assert batch is not None
        if len(batch):
            batches.append(batch)
            seen += len(batch)
    return batches


def drain(source: LiveSource) -> list[PacketBatch]:
    """Non-empty batches until the source has been quiet for two poll intervals in a row."""
    batches: list[PacketBatch] = []
    quiet = 0
    deadline = time.monotonic() + WAIT_SECONDS
    while quiet < 2 and time.monotonic() < deadline:
        batch = source.next_batch()
        assert batch is not None
        quiet = 0 if len(batch) else quiet + 1
        if len(batch):
            batches.append(batch)
    return batches


def packets_of(batches: list[PacketBatch]) -> list[bytes]:
    return [batch.packet(i) for batch in batches for i in range(len(batch))]


def udp_dst_port(frame: bytes) -> int:
    ihl = (frame[14] & 0x0F) * 4
    return int(struct.unpack_from("!H", frame, 14 + ihl + 2)[0])


def test_each_datagram_arrives_once_in_order_and_the_filter_holds(
    receiver: socket.socket, other_receiver: socket.socket
) -> None:
    port, other = port_of(receiver), port_of(other_receiver)
    payloads = [f"shrike live test {i:04d} ".encode() * (1 + i % 5) for i in range(300)]
    with LiveSource("lo", bpf_filter=f"udp and dst port {port}", timeout_ms=20) as source:
        assert isinstance(source, Source)
        assert source.linktype is LinkType.ETHERNET
        before = time.time_ns()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for payload in payloads:
                tx.sendto(payload, ("127.0.0.1", port))
                tx.sendto(b"must not be captured", ("127.0.0.1", other))
        batches = collect(source, len(payloads))
        after = time.time_ns()
        # Anything left over would be a duplicate or a packet the filter let through.
        leftover = source.next_batch()
        assert leftover is not None and len(leftover) == 0
        stats = source.stats()

    frames = packets_of(batches)
    assert [frame[ETH_IPV4_UDP_HEADERS:] for frame in frames] == payloads
    assert {udp_dst_port(frame) for frame in frames} == {port}
    assert all(frame[:12] == bytes(12) and frame[12:14] == b"\x08\x00" for frame in frames)

    for batch in batches:
        assert batch.linktype == LinkType.ETHERNET
        assert (batch.caplens == batch.wirelens).all()
    assert [b.first_index for b in batches] == [
        sum(len(b) for b in batches[:i]) for i in range(len(batches))
    ]

    stamps = [int(t) for b in batches for t in b.timestamps]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after

    assert stats.packets == len(payloads)
    assert stats.bytes == sum(len(p) + ETH_IPV4_UDP_HEADERS for p in payloads)
    assert stats.batches == len(batches)
    assert stats.dropped == 0
    # The kernel counted exactly the filtered packets, so the other port never reached the ring.
    assert stats.extra["kernel_packets"] == len(payloads)


def test_ring_overflow_is_counted_as_dropped(receiver: socket.socket) -> None:
    port = port_of(receiver)
    sent = 60_000
    # Two 1 MiB blocks hold far fewer than `sent` small packets, and nothing
    # reads the ring while they are sent, so the kernel must drop some.
    with LiveSource(
        "lo", bpf_filter=f"udp dst port {port}", buffer_bytes=1, timeout_ms=10
    ) as source:
        send_udp(port, [i.to_bytes(4, "big") for i in range(sent)])
        batches = drain(source)
        stats = source.stats()
    numbers = [int.from_bytes(p[ETH_IPV4_UDP_HEADERS:], "big") for p in packets_of(batches)]
    assert numbers == sorted(set(numbers))  # in order, no repeats
    assert stats.dropped > 0
    assert stats.packets == len(numbers) < sent
    assert stats.packets + stats.dropped == stats.extra["kernel_packets"]


def test_batch_size_caps_batches_that_span_ring_blocks(receiver: socket.socket) -> None:
    port = port_of(receiver)
    bursts = [[f"burst {b} packet {i}".encode() for i in range(10)] for b in range(3)]
    with LiveSource("lo", bpf_filter=f"udp dst port {port}", batch_size=7, timeout_ms=10) as source:
        for burst in bursts:
            send_udp(port, burst)
            # Long enough for the kernel to close the block, so each burst sits in its own block.
            time.sleep(0.1)
        batches = collect(source, 30)
    assert [len(b) for b in batches] == [7, 7, 7, 7, 2]
    assert [p[ETH_IPV4_UDP_HEADERS:] for p in packets_of(batches)] == [
        p for burst in bursts for p in burst
    ]
    assert [b.first_index for b in batches] == [0, 7, 14, 21, 28]


def test_one_batch_gathers_several_ready_blocks(receiver: socket.socket) -> None:
    port = port_of(receiver)
    bursts = [[f"block {b} packet {i}".encode() for i in range(4)] for b in range(3)]
    with LiveSource("lo", bpf_filter=f"udp dst port {port}", timeout_ms=10) as source:
        for burst in bursts:
            send_udp(port, burst)
            time.sleep(0.1)
        batches = collect(source, 12)
    assert len(batches) == 1
    batch = batches[0]
    assert [p[ETH_IPV4_UDP_HEADERS:] for p in packets_of(batches)] == [
        p for burst in bursts for p in burst
    ]
    # Blocks are compacted into one buffer: nothing but the packets and their ring headers.
    assert batch.data.shape[0] < 3 * 4 * (ETH_IPV4_UDP_HEADERS + 32 + 128)


def test_snaplen_cuts_captured_bytes_but_keeps_the_wire_length(receiver: socket.socket) -> None:
    port = port_of(receiver)
    payload = bytes(range(256)) * 4
    with LiveSource("lo", bpf_filter=f"udp dst port {port}", snaplen=64) as source:
        send_udp(port, [payload])
        batches = collect(source, 1)
    (frame,) = packets_of(batches)
    assert len(frame) == 64
    assert frame[ETH_IPV4_UDP_HEADERS:] == payload[: 64 - ETH_IPV4_UDP_HEADERS]
    assert int(batches[0].wirelens[0]) == ETH_IPV4_UDP_HEADERS + len(payload)


def test_packet_limit_ends_the_capture(receiver: socket.socket) -> None:
    port = port_of(receiver)
    with LiveSource("lo", bpf_filter=f"udp dst port {port}", packet_limit=5) as source:
        send_udp(port, [b"p%d" % i for i in range(8)])
        batches = collect(source, 5)
        assert source.next_batch() is None
        assert source.stats().packets == 5
    assert [p[ETH_IPV4_UDP_HEADERS:] for p in packets_of(batches)] == [b"p%d" % i for i in range(5)]


def test_quiet_interface_yields_empty_batches_at_the_poll_timeout(receiver: socket.socket) -> None:
    with LiveSource("lo", bpf_filter=f"udp dst port {port_of(receiver)}", timeout_ms=30) as source:
        started = time.monotonic()
        batch = source.next_batch()
        elapsed = time.monotonic() - started
        assert batch is not None and len(batch) == 0
        assert batch.linktype == LinkType.ETHERNET
        assert 0.02 <= elapsed < 1.0
        assert source.stats().batches == 0


def test_close_ends_the_source_and_keeps_its_counters(receiver: socket.socket) -> None:
    port = port_of(receiver)
    source = LiveSource("lo", bpf_filter=f"udp dst port {port}")
    send_udp(port, [b"one", b"two"])
    collect(source, 2)
    source.close()
    source.close()
    assert source.next_batch() is None
    assert source.stats().packets == 2


def test_outgoing_loopback_copies_are_skipped_without_kernel_help(receiver: socket.socket) -> None:
    # Kernels before 4.20 lack PACKET_IGNORE_OUTGOING and hand over both copies
    # of each loopback packet; turning the option off reproduces that here.
    port = port_of(receiver)
    payloads = [b"copy %d" % i for i in range(20)]
    with LiveSource("lo", bpf_filter=f"udp dst port {port}", timeout_ms=10) as source:
        source._sock.setsockopt(263, 23, 0)  # SOL_PACKET, PACKET_IGNORE_OUTGOING
        send_udp(port, payloads)
        batches = collect(source, 20)
        time.sleep(0.05)
        leftover = source.next_batch()
        stats = source.stats()
    assert leftover is not None and len(leftover) == 0
    assert [p[ETH_IPV4_UDP_HEADERS:] for p in packets_of(batches)] == payloads
    assert stats.extra["outgoing_skipped"] == 20
    assert stats.extra["kernel_packets"] == 40


def loopback_frame(port: int, payload: bytes, *, vlan: int | None = None) -> bytes:
    """A UDP frame to 127.0.0.1 as it looks on lo (zeroed MACs), optionally 802.1Q-tagged."""
    link = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
    if vlan is not None:
        link = link / Dot1Q(vlan=vlan, prio=5)
    return bytes(
        link / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=40000, dport=port) / payload
    )


@pytest.mark.parametrize("snaplen", [65535, 40])
def test_vlan_tags_the_kernel_strips_are_put_back(receiver: socket.socket, snaplen: int) -> None:
    # Linux moves the 802.1Q tag of every received frame into the ring header;
    # frames sent on lo must come back exactly as they were sent.
    port = port_of(receiver)
    first_block = [
        loopback_frame(port, b"tagged", vlan=42),
        loopback_frame(port, b"plain after the tagged one"),
    ]
    second_block = [loopback_frame(port, b"plain in the next block")]
    filter_ = f"udp dst port {port}"
    with LiveSource("lo", bpf_filter=filter_, snaplen=snaplen, timeout_ms=10) as source:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
            tx.bind(("lo", 0))
            for frame in first_block:
                tx.send(frame)
            # The pause lets the kernel hand that block over, so the batch
            # below joins two blocks, the first starting with a rebuilt frame.
            time.sleep(0.1)
            for frame in second_block:
                tx.send(frame)
        time.sleep(0.1)
        batches = collect(source, 3)
        stats = source.stats()
    sent = first_block + second_block
    assert len(batches) == 1
    assert packets_of(batches) == [frame[:snaplen] for frame in sent]
    assert batches[0].wirelens.tolist() == [len(frame) for frame in sent]
    assert stats.extra["vlan_tags_restored"] == 1


def test_bad_filter_names_the_filter_and_libpcap_reason() -> None:
    with pytest.raises(BpfFilterError) as info:
        LiveSource("lo", bpf_filter="udp and dst port")
    assert "'udp and dst port'" in str(info.value)
    assert "syntax error" in str(info.value)


def test_unknown_interface_lists_the_real_ones() -> None:
    with pytest.raises(SourceUnavailableError) as info:
        LiveSource("shrike-nope0")
    message = str(info.value)
    assert "no such interface 'shrike-nope0'" in message
    assert "lo" in message


@pytest.mark.parametrize("name", ["", "x" * 16, "lo\x00"])
def test_malformed_interface_names_are_refused(name: str) -> None:
    with pytest.raises(SourceUnavailableError):
        LiveSource(name)


@pytest.mark.parametrize(
    ("option", "value"),
    [("snaplen", 0), ("batch_size", 0), ("timeout_ms", 0), ("packet_limit", -1)],
)
def test_bad_options_are_refused(option: str, value: int) -> None:
    with pytest.raises(ValueError, match=option):
        LiveSource("lo", **{option: value})


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop CAP_NET_RAW")
def test_missing_capability_says_what_to_do() -> None:
    repo = Path(__file__).resolve().parents[2]
    script = (
        "from dpdk_io.errors import SourceUnavailableError\n"
        "from dpdk_io.live import LiveSource\n"
        "try:\n    LiveSource('lo')\n"
        "except SourceUnavailableError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        ["setpriv", "--bounding-set", "-net_raw", "--", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=60,
        check=False,
    )
    if "Operation not permitted" in result.stderr:
        pytest.skip("this container cannot change capability bounding sets")
    assert result.returncode == 0, result.stderr
    assert "needs root or the CAP_NET_RAW capability" in result.stdout
    assert "setcap" in result.stdout


# -- a tun device: no link header (LinkType.RAW) and an interface we may take down --

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFF_PROMISC = 0x100


@contextlib.contextmanager
def tun_device() -> Iterator[tuple[str, int]]:
    """A fresh, down tun interface and its file descriptor; it vanishes when the descriptor closes."""
    name = f"shrk{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as exc:
        pytest.skip(f"no tun devices here: {exc}")
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        pytest.skip(f"cannot create a tun device: {exc}")
    try:
        yield name, fd
    finally:
        os.close(fd)


def interface_flags(name: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        reply = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, struct.pack("16sh22x", name.encode(), 0))
    return int(struct.unpack("16sh22x", reply)[1])


def kernel_flags(name: str) -> int:
    # SIOCGIFFLAGS reports only promiscuity set by hand; sysfs shows the device's real flags.
    return int(Path(f"/sys/class/net/{name}/flags").read_text(), 16)


def set_up(name: str, up: bool) -> None:
    flags = interface_flags(name)
    flags = flags | _IFF_UP if up else flags & ~_IFF_UP
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sh22x", name.encode(), flags))


def ipv4_udp(dport: int, payload: bytes) -> bytes:
    """A UDP datagram to 127.0.0.1: arriving on a tun device the kernel drops it as martian."""
    return bytes(IP(src="192.0.2.1", dst="127.0.0.1") / UDP(sport=40000, dport=dport) / payload)


def test_interface_down_says_how_to_bring_it_up() -> None:
    with tun_device() as (name, _), pytest.raises(SourceUnavailableError) as info:
        LiveSource(name)
    assert f"interface {name} is down" in str(info.value)
    assert f"ip link set {name} up" in str(info.value)


def test_tun_device_captures_raw_ip_and_honours_promiscuous_mode() -> None:
    with tun_device() as (name, fd):
        set_up(name, True)
        with LiveSource(name, bpf_filter="udp dst port 7777", promiscuous=True) as source:
            assert source.linktype is LinkType.RAW
            assert kernel_flags(name) & _IFF_PROMISC
            os.write(fd, ipv4_udp(7778, b"filtered out"))
            os.write(fd, ipv4_udp(7777, b"raw ip"))
            batches = collect(source, 1)
            assert packets_of(batches) == [ipv4_udp(7777, b"raw ip")]
            assert batches[0].linktype == LinkType.RAW
        # The membership goes with the socket.
        assert not kernel_flags(name) & _IFF_PROMISC


def test_interface_going_down_mid_capture_is_reported() -> None:
    with tun_device() as (name, _):
        set_up(name, True)
        with LiveSource(name, timeout_ms=10) as source:
            set_up(name, False)
            with pytest.raises(SourceUnavailableError, match=f"{name} is down"):
                for _ in range(100):
                    source.next_batch()
