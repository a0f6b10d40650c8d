"""The compiled inspector and matcher: loaded with the build, and matching as their sources do."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.compiled_runs import run_json

from rules import _compiled

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "data"
COMMUNITY = SHARED / "rulesets" / "snort3-community" / "snort3-community.rules"
NDPI = SHARED / "pcaps" / "ndpi"
needs_build = pytest.mark.skipif(
    not _compiled.MANIFEST.is_file(),
    reason="no compiled modules here (installed without a C compiler or mypyc)",
)

# Runs captures through the pipeline and prints every alert with the packet facts it
# names, the inspector's and the matcher's counters, and whether the matcher is compiled.
_MATCH = """
import json, sys, dataclasses
from rules import _compiled
from engine.flows import FlowTableConfig
from engine.inspect import Inspector
import engine.inspect.inspector
import engine.match.matcher
from engine.match import Matcher, compile_ruleset, load_rules
from engine.match.loading import default_variables
from engine.match.stream import checksum_validator, iter_matches
from engine.sources import open_source

rule_files, captures = sys.argv[1].split(","), sys.argv[2:]
rules, table, _ = load_rules(rule_files, default_variables({"HOME_NET": "any", "EXTERNAL_NET": "any"}))
ruleset = compile_ruleset(rules, table)
out = {
    "compiled": [_compiled.is_compiled(m) for m in (engine.match.matcher, engine.inspect.inspector)],
    "alerts": [],
}
for capture in captures:
    inspector = Inspector()
    matcher = Matcher(ruleset, inspector=inspector)
    alerts = []
    with open_source("pcap", capture) as source:
        for result in iter_matches(source, matcher, FlowTableConfig(), checksums=checksum_validator("all")):
            alerts += result.alerts
    alerts += matcher.finish()
    for a in alerts:
        m = a.match
        out["alerts"].append([capture, m.rule_id, m.packet, m.app_proto, m.flow.community_id,
                              a.src_ip, a.src_port, a.dst_ip, a.dst_port, a.proto, a.to_server,
                              a.vlan, a.packet.hex(), a.tx_id])
    out[capture] = [dataclasses.asdict(inspector.stats()), dataclasses.asdict(matcher.stats)]
print(json.dumps(out))
"""


def _run(pure: bool, rule_files: list[Path], captures: list[Path]) -> dict[str, object]:
    args = [",".join(map(str, rule_files)), *map(str, captures)]
    return run_json(_MATCH, args, pure=pure, cwd=ROOT)


def _same_both_ways(rule_files: list[Path], captures: list[Path]) -> dict[str, object]:
    compiled, source = _run(False, rule_files, captures), _run(True, rule_files, captures)
    assert compiled.pop("compiled") == [True, True]
    assert source.pop("compiled") == [False, False]
    assert compiled == source
    return compiled


@needs_build
def test_the_compiled_matcher_matches_the_sample_capture_as_its_source(tmp_path: Path) -> None:
    from engine.sample import write_sample_pcap

    capture = tmp_path / "sample.pcap"
    write_sample_pcap(capture)
    got = _same_both_ways([ROOT / "signatures"], [capture])
    assert got["alerts"]


@needs_build
@pytest.mark.skipif(not COMMUNITY.is_file(), reason=f"needs {SHARED} (shared data)")
def test_the_compiled_matcher_matches_real_traffic_as_its_source() -> None:
    captures = [NDPI / "1kxun.pcap", NDPI / "gnutella.pcap", NDPI / "reddit.pcap"]
    got = _same_both_ways([COMMUNITY], captures)
    assert len(got["alerts"]) > 100  # type: ignore[arg-type]
