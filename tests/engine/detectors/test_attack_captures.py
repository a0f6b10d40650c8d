"""Every labelled attack capture yields a verdict carrying its ATT&CK technique (needs ../shared/data)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from engine.hybrid import HybridEngine, run_hybrid
from engine.sources import open_source

ATTACKS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "attack-pcaps"

pytestmark = pytest.mark.shared


def _labelled() -> list[tuple[str, str]]:
    labels = ATTACKS / "labels.csv"
    if not labels.is_file():
        return []
    with labels.open() as fh:
        return [
            (r["file"], r["attack_technique"]) for r in csv.DictReader(fh) if r["attack_technique"]
        ]


@pytest.mark.parametrize(("capture", "technique"), _labelled() or [("absent", "")])
def test_capture_yields_its_technique(capture: str, technique: str) -> None:
    if capture == "absent":
        pytest.skip(f"attack captures absent: no labels.csv under {ATTACKS}")
    engine = HybridEngine()
    with open_source("pcap", str(ATTACKS / capture)) as src:
        verdicts = list(run_hybrid(src, engine))
    carried = {t for v in verdicts for t in v.techniques}
    assert any(t == technique or t.startswith(technique + ".") for t in carried), (
        f"{capture}: verdict techniques {sorted(carried)}, label {technique}"
    )
    tagged = [
        v
        for v in verdicts
        if technique in {t.split(".")[0] for t in v.techniques} or technique in v.techniques
    ]
    assert all(v.label in ("malicious", "suspicious") for v in tagged)
    assert all(v.reasons and all(r for r in v.reasons) for v in tagged)
