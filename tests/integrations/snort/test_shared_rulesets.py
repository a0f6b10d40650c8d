"""The importer on the real rulesets in ../shared/data/rulesets: coverage targets, nothing lost,
import -> export -> import identity, and `.shrike` output that parses back."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from integrations.snort.export import export_rules
from integrations.snort.importer import ImportResult, import_file, import_text
from integrations.snort.report import FileReport, merge
from integrations.snort.shrike_text import shrike_text
from rules import parse_collecting

RULESETS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "rulesets"
NAMES = (
    "snort3-community",
    "snort2-community",
    "et-open-snort-2.9.0",
    "et-open-suricata-5.0",
    "et-open-suricata-7.0.3-sample",
)

pytestmark = pytest.mark.shared

# A rule line, active or commented out, as a plain regular expression sees it.
_RULE_LINE = re.compile(r"^\s*#*\s*(alert|drop|pass|log|reject|sdrop)\s.*\bsid\s*:\s*\d+", re.M)


def _files(name: str) -> list[Path]:
    folder = RULESETS / name
    if not folder.is_dir():
        pytest.skip(f"shared rulesets absent: no {folder}")
    return sorted(folder.glob("*.rules"))


@cache
def _imported(name: str) -> tuple[ImportResult, ...]:
    return tuple(import_file(path) for path in _files(name))


def _report(name: str) -> FileReport:
    return merge(name, (result.report for result in _imported(name)))


@pytest.mark.parametrize("name", NAMES)
def test_no_rule_is_lost(name: str) -> None:
    for path, result in zip(_files(name), _imported(name), strict=True):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        expected = len(_RULE_LINE.findall(text))
        assert len(result.rules) == result.report.rules == expected, path
        assert result.report.lost == 0
        assert result.report.imported + result.report.disabled == result.report.rules


@pytest.mark.parametrize(
    ("name", "target"), [("snort3-community", 0.98), ("et-open-suricata-5.0", 0.95)]
)
def test_full_semantics_targets(name: str, target: float) -> None:
    report = _report(name)
    assert report.imported / report.rules >= target, report.as_json()


@pytest.mark.parametrize("name", NAMES)
def test_import_export_import_identity(name: str) -> None:
    for path, first in zip(_files(name), _imported(name), strict=True):
        exported = export_rules(first.rules)
        assert exported.skipped == 0, path
        second = import_text(exported.text, f"{path.name}.exported")
        assert len(second.rules) == len(first.rules)
        different = [a.id for a, b in zip(first.rules, second.rules, strict=True) if a != b]
        assert different == [], f"{path}: rules differ after a round trip: {different[:10]}"


@pytest.mark.parametrize("name", ["snort3-community", "et-open-suricata-7.0.3-sample"])
def test_shrike_output_parses_back_to_the_same_rules(name: str) -> None:
    for result in _imported(name):
        text, final, _ = shrike_text(result.rules, result.texts, "out.shrike")
        parsed = parse_collecting(text, "out.shrike")
        assert parsed.errors == ()
        assert parsed.file.rules == tuple(final)
        verbatim = sum(1 for a, b in zip(result.rules, final, strict=True) if a != b)
        assert verbatim == 0
