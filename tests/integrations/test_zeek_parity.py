"""Zeek parity over the shared traces: Shrike flows against Zeek's conn.log baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpdk_io.pcap import PcapSource
from engine.pipeline import iter_flow_records
from integrations.zeek.parity import ParityResult, compare

ZEEK_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "zeek"

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def results() -> dict[str, ParityResult]:
    if not (ZEEK_DIR / "index.json").is_file():
        pytest.skip(f"Zeek parity data absent: no index.json under {ZEEK_DIR}")
    index = json.loads((ZEEK_DIR / "index.json").read_text())
    out = {}
    for pair in index["pairs"]:
        flows = []
        with PcapSource(ZEEK_DIR / pair["trace"]) as src:
            for recs in iter_flow_records(src):
                flows.extend(recs.to_dicts())
        out[pair["trace"]] = compare(pair["trace"], ZEEK_DIR / pair["conn_log"], flows)
    assert out, "index.json lists no pairs"
    return out


def test_overall_parity(results: dict[str, ParityResult]) -> None:
    conns = sum(r.zeek_conns for r in results.values())
    assert conns > 0
    pk = sum(r.packets_equal for r in results.values()) / conns
    by = sum(r.bytes_equal for r in results.values()) / conns
    st = sum(r.state_equal for r in results.values()) / conns
    worst = sorted(results.values(), key=lambda r: r.share(r.packets_equal))[:3]
    detail = "; ".join(f"{r.trace}: {r.share(r.packets_equal):.1%}" for r in worst)
    assert pk >= 0.98, f"packets equal {pk:.2%} (worst: {detail})"
    assert by >= 0.98, f"bytes equal {by:.2%}"
    assert st >= 0.95, f"conn_state equal {st:.2%}"


def test_wikipedia_exact(results: dict[str, ParityResult]) -> None:
    key = next((k for k in results if Path(k).name == "wikipedia.pcap"), None)
    if key is None:
        pytest.skip("wikipedia.pcap not in index.json")
    r = results[key]
    assert r.zeek_conns > 0
    assert r.matched == r.zeek_conns, r.mismatches
    assert r.packets_equal == r.bytes_equal == r.state_equal == r.zeek_conns, r.mismatches
