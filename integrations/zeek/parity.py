"""Comparing Shrike flow records with a Zeek conn.log of the same capture, connection by connection."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.zeek.logs import iter_conn_tuples, read_log

COMPARED = ("orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "conn_state")


@dataclass(slots=True)
class ParityResult:
    trace: str
    zeek_conns: int = 0
    shrike_flows: int = 0
    matched: int = 0  # Zeek connections with a Shrike flow on the same 5-tuple
    packets_equal: int = 0
    bytes_equal: int = 0
    state_equal: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def share(self, n: int) -> float:
        return n / self.zeek_conns if self.zeek_conns else 1.0


def _key(rec: dict[str, Any]) -> tuple[str, int, str, int, str]:
    return (rec["src_ip"], rec["src_port"], rec["dst_ip"], rec["dst_port"], rec["proto"])


def _distance(flow: dict[str, Any], zeek: dict[str, Any]) -> int:
    return sum(
        abs(int(flow[k]) - int(zeek.get(k) or 0))
        for k in ("orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes")
    )


def compare(trace: str, zeek_conn_log: str | Path, flows: list[dict[str, Any]]) -> ParityResult:
    """Pair Zeek connections with Shrike flows on the 5-tuple and count equal fields.

    Where one 5-tuple holds several connections, each Zeek connection pairs with
    the remaining Shrike flow closest in packets and IP bytes (earliest first on a tie).
    """
    res = ParityResult(trace=trace, shrike_flows=len(flows))
    ours: dict[tuple[str, int, str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for f in sorted(flows, key=lambda r: r["ts"]):
        ours[_key(f)].append(f)
    for key, z in iter_conn_tuples(read_log(zeek_conn_log)):
        res.zeek_conns += 1
        cands = ours.get(key)
        if not cands:
            res.mismatches.append({"tuple": key, "why": "no Shrike flow on this 5-tuple"})
            continue
        best = min(range(len(cands)), key=lambda i: _distance(cands[i], z))
        f = cands.pop(best)
        res.matched += 1
        pk = f["orig_pkts"] == z.get("orig_pkts") and f["resp_pkts"] == z.get("resp_pkts")
        by = f["orig_ip_bytes"] == z.get("orig_ip_bytes") and f["resp_ip_bytes"] == z.get(
            "resp_ip_bytes"
        )
        st = f["conn_state"] == z.get("conn_state")
        res.packets_equal += pk
        res.bytes_equal += by
        res.state_equal += st
        if not (pk and by and st):
            res.mismatches.append(
                {
                    "tuple": key,
                    "zeek": {k: z.get(k) for k in (*COMPARED, "history")},
                    "shrike": {k: f[k] for k in (*COMPARED, "history")},
                }
            )
    return res
