"""Matcher test traffic: scapy packets into batches, .shrike text into a Matcher."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from dpdk_io.batch import PacketBatch
from engine.decode import decode
from engine.flows import FlowTable, FlowTableConfig
from engine.match import Alert, Matcher, compile_ruleset
from rules import parse_text
from rules.variables import VariableTable

NS = 1_000_000_000
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def eth(p: Packet) -> Packet:
    return Ether(src=MACS["src"], dst=MACS["dst"]) / p


def matcher_for(text: str, variables: VariableTable | None = None, **kw: object) -> Matcher:
    rules = parse_text(text).rules
    rs = compile_ruleset(rules, variables)
    assert not rs.diagnostics, [str(d) for d in rs.diagnostics]
    return Matcher(rs, **kw)  # type: ignore[arg-type]


def run_packets(
    matcher: Matcher,
    packets: Sequence[Packet],
    *,
    batch_size: int | None = None,
    start: float = 1_700_000_000.0,
    table: FlowTable | None = None,
) -> list[Alert]:
    """Feed packets (one per 10 ms) through decode, a flow table (`table`, or a new
    one) and `matcher`."""
    if table is None:
        table = FlowTable(FlowTableConfig())
    frames = [bytes(eth(p) if not isinstance(p, Ether) else p) for p in packets]
    size = batch_size or len(frames)
    alerts: list[Alert] = []
    for first in range(0, len(frames), size):
        chunk = frames[first : first + size]
        ts = [round((start + (first + i) * 0.01) * NS) for i in range(len(chunk))]
        batch = PacketBatch.from_packets(chunk, ts, 1, first_index=first)
        decoded = decode(batch)
        events = table.update(decoded)
        alerts.extend(matcher.scan(batch, decoded, events))
    return alerts


def sids(alerts: list[Alert]) -> list[int]:
    return [a.match.rule_id for a in alerts]


def handshake(
    c: str = "10.0.0.1", s: str = "10.0.0.2", cp: int = 40000, sp: int = 80
) -> list[Packet]:
    return [
        IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="S", seq=100),
        IP(src=s, dst=c) / TCP(sport=sp, dport=cp, flags="SA", seq=500, ack=101),
        IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="A", seq=101, ack=501),
    ]


def data(
    payload: bytes,
    *,
    to_server: bool = True,
    c: str = "10.0.0.1",
    s: str = "10.0.0.2",
    cp: int = 40000,
    sp: int = 80,
    seq: int = 101,
) -> Packet:
    if to_server:
        return IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="PA", seq=seq, ack=501) / payload
    return IP(src=s, dst=c) / TCP(sport=sp, dport=cp, flags="PA", seq=seq, ack=101) / payload


def load_bench() -> ModuleType:
    """bench/suricata_verify.py as a module (bench/ is not a package)."""
    path = Path(__file__).resolve().parents[3] / "bench" / "suricata_verify.py"
    spec = importlib.util.spec_from_file_location("suricata_verify_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module
