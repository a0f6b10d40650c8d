"""Opening a capture source by kind (pcap file, DPDK port, live interface) for the CLI and pipelines."""

from __future__ import annotations

from pathlib import Path

from dpdk_io.batch import Source
from dpdk_io.errors import CaptureError

SOURCE_KINDS = ("pcap", "dpdk", "live")


def open_source(
    kind: str,
    target: str,
    *,
    bpf_filter: str | None = None,
    dpdk_config: str | None = None,
    packet_limit: int | None = None,
) -> Source:
    """Open `target` as a source of `kind`.

    pcap: a pcap/pcapng file. dpdk: a pcap file replayed through a net_pcap
    vdev, or "-" to use the ports of the DPDK config as they are. live: an
    interface name.
    """
    if kind == "pcap":
        from dpdk_io.pcap import PcapSource

        if bpf_filter:
            raise CaptureError(
                "--filter applies to live capture only; filter pcaps with tcpdump -w"
            )
        return PcapSource(target)
    if kind == "dpdk":
        from dpdk_io.dpdk import DpdkSource

        pcap = None if target == "-" else target
        if pcap is not None and not Path(pcap).is_file():
            raise CaptureError(f"{pcap}: no such capture file to replay through DPDK")
        return DpdkSource.from_config(dpdk_config, pcap=pcap)
    if kind == "live":
        from dpdk_io.live import LiveSource

        return LiveSource(target, bpf_filter=bpf_filter, packet_limit=packet_limit)
    raise CaptureError(f"unknown source kind {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
