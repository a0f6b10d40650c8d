"""decode() on arbitrary bytes: never raises, and every packet is accounted for exactly once."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpdk_io.batch import PacketBatch
from engine.decode import ROWS_PER_PACKET, decode

LINKTYPES = (0, 1, 9, 10, 101, 104, 108, 113, 127, 228, 229, 276)

# Prefixes that steer random bytes past the link layer into IP, tunnels and transports.
PREFIXES = (
    b"",
    b"\x45\x00",  # IPv4 header start
    b"\x60\x00\x00\x00",  # IPv6 header start
    b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00\x45\x00",  # Ethernet + IPv4
    b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x81\x00\x00\x05\x88\x47",  # VLAN + MPLS
    b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x88\x64\x11\x00\x00\x01\x00\x20\x00\x21",
)

packets = st.lists(
    st.tuples(st.sampled_from(PREFIXES), st.binary(min_size=0, max_size=200)).map(
        lambda t: (t[0] + t[1])[:200]
    ),
    min_size=1,
    max_size=50,
)


def _check(pkts: list[bytes], linktype: int) -> None:
    batch = PacketBatch.from_packets(pkts, list(range(len(pkts))), linktype)
    d = decode(batch)
    rows = d.rows
    with_rows = len(set(rows["pkt"].tolist()))
    assert len(pkts) == with_rows + int(d.malformed.sum()) + d.other
    assert d.malformed[0] == 0
    assert len(rows) <= ROWS_PER_PACKET * len(pkts)
    if len(rows):
        assert rows["pkt"].min() >= 0 and rows["pkt"].max() < len(pkts)
        # rows come in packet order and carry their packet's timestamp
        assert np.all(np.diff(rows["pkt"]) >= 0)
        assert np.array_equal(rows["ts"], rows["pkt"].astype(np.int64))
        assert np.all(rows["payload_len"] >= 0)
        caplens = np.array([len(p) for p in pkts])[rows["pkt"]]
        assert np.all(rows["l3_off"] < caplens)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pkts=packets, linktype=st.sampled_from(LINKTYPES))
def test_random_bytes_never_raise_and_are_accounted(pkts: list[bytes], linktype: int) -> None:
    _check(pkts, linktype)


@settings(max_examples=100, deadline=None)
@given(
    pkts=st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=50),
    linktype=st.integers(min_value=0, max_value=300),
)
def test_any_linktype(pkts: list[bytes], linktype: int) -> None:
    _check(pkts, linktype)
