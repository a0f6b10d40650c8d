"""Generated traffic for detector tests, and a runner from packets to detections."""

from __future__ import annotations

from typing import Any

from dpdk_io.batch import LinkType, PacketBatch
from engine.decode import decode
from engine.detectors import DetectorsConfig, DetectorSet, time_slices
from engine.events import Detection
from engine.flows import FlowTable, FlowTableConfig

T0 = 1_700_000_000.0
CLIENT_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:fe"


def stamp(pkt: Any, t: float) -> Any:
    pkt.time = t
    return pkt


def ether(reverse: bool = False) -> Any:
    from scapy.layers.l2 import Ether

    if reverse:
        return Ether(src=GATEWAY_MAC, dst=CLIENT_MAC)
    return Ether(src=CLIENT_MAC, dst=GATEWAY_MAC)


def batch_of(pkts: list[Any]) -> PacketBatch:
    return PacketBatch.from_packets(
        [bytes(p) for p in pkts], [round(float(p.time) * 1e9) for p in pkts], LinkType.ETHERNET
    )


def run(
    pkts: list[Any],
    cfg: DetectorsConfig | None = None,
    detectors: DetectorSet | None = None,
    *,
    flush: bool = True,
) -> list[Detection]:
    """Packets (time-stamped scapy frames) through decode, flows and detectors."""
    ds = detectors if detectors is not None else DetectorSet.from_config(cfg or DetectorsConfig())
    table = FlowTable(FlowTableConfig())
    out: list[Detection] = []
    for part in time_slices(decode(batch_of(pkts)), 1.0):
        out += ds.observe(part)
        events = table.update(part)
        out += ds.observe(events.ended)
    if flush:
        out += ds.observe(table.flush())
    return out


def tcp_probe_scan(scanner: str, target: str, ports: range, t0: float = T0) -> list[Any]:
    """A SYN to each port, answered with RST-ACK (closed ports)."""
    from scapy.layers.inet import IP, TCP

    pkts = []
    for k, port in enumerate(ports):
        t = t0 + k * 0.05
        pkts.append(
            stamp(
                ether()
                / IP(src=scanner, dst=target)
                / TCP(sport=40000, dport=port, flags="S", seq=1),
                t,
            )
        )
        pkts.append(
            stamp(
                ether(True)
                / IP(src=target, dst=scanner)
                / TCP(sport=port, dport=40000, flags="RA", ack=2),
                t + 0.001,
            )
        )
    return pkts


def arp_requests(sender: str, mac: str, targets: list[str], t0: float = T0) -> list[Any]:
    from scapy.layers.l2 import ARP, Ether

    return [
        stamp(
            Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=1, hwsrc=mac, psrc=sender, hwdst="00:00:00:00:00:00", pdst=t),
            t0 + k * 0.01,
        )
        for k, t in enumerate(targets)
    ]
